//! Writing one file that does not come from a source tree (a heredoc or a
//! download) with COPY's destination rules, and the heredoc operation.

use std::io::{self, Read};
use std::os::unix::fs::{PermissionsExt, lchown};
use std::path::Path;
use std::time::SystemTime;

use filetime::FileTime;
use kiln_dockerfile::instructions::Chmod;

use crate::dest::{Dest, mkdir_all, mkdir_parent_of};
use crate::error::{IoContext, Result};
use crate::owner::{Owner, resolve_chown};
use crate::tree::{CopyStats, create_new, replaceable};

/// A `COPY <<NAME dest` heredoc file.
#[derive(Debug, Clone)]
pub struct MkfileRequest<'a> {
    /// The step's merged rootfs.
    pub dest_root: &'a Path,
    /// WORKDIR, for a relative `dest`.
    pub workdir: &'a str,
    /// The destination as written.
    pub dest: &'a str,
    /// The heredoc's name: the file name when `dest` is a directory.
    pub name: &'a str,
    /// The file's content (the heredoc body, already expanded).
    pub content: &'a [u8],
    /// `--chown`, resolved in `dest_root`.
    pub chown: Option<&'a str>,
    /// `--chmod`; the base mode is 0644.
    pub chmod: Option<&'a Chmod>,
}

/// Writes a heredoc file as BuildKit does: a 0644 root-owned file copied to
/// `dest` with COPY's rules, `--chown`/`--chmod` applied.
pub fn mkfile(req: &MkfileRequest<'_>) -> Result<CopyStats> {
    let owner = match req.chown {
        Some(spec) => resolve_chown(req.dest_root, spec)?,
        None => Owner::ROOT,
    };
    let file = NewFile {
        name: req.name,
        owner,
        mode: req.chmod.map_or(0o644, |c| c.apply(0o644, false)),
        mtime: None,
    };
    let dest = Dest::new(req.workdir, req.dest);
    place_file(req.dest_root, &dest, &file, &mut &req.content[..])
}

/// Metadata of a file written by [`place_file`].
pub(crate) struct NewFile<'a> {
    pub name: &'a str,
    pub owner: Owner,
    pub mode: u32,
    pub mtime: Option<SystemTime>,
}

/// Streams `content` to `dest` (into it when it is or names a directory),
/// creating missing parents (0755, owned like the file).
pub(crate) fn place_file(
    dest_root: &Path,
    dest: &Dest,
    file: &NewFile<'_>,
    content: &mut dyn Read,
) -> Result<CopyStats> {
    let parent = if dest.is_dir {
        dest.path()
    } else {
        dest.parent()
    };
    mkdir_all(dest_root, &parent, file.owner)?;
    let mut target = kiln_executor::resolve_in_root(dest_root, &dest.path())?;
    if std::fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
        target.push(file.name);
    } else {
        mkdir_parent_of(dest_root, &target, file.owner)?;
    }
    replaceable(&target)?;
    let mut out = create_new(&target)?;
    let bytes = io::copy(content, &mut out).at("writing", &target)?;
    lchown(&target, Some(file.owner.uid), Some(file.owner.gid)).at("chown", &target)?;
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(file.mode))
        .at("chmod", &target)?;
    if let Some(mtime) = file.mtime {
        let t = FileTime::from_system_time(mtime);
        filetime::set_file_times(&target, t, t).at("setting times", &target)?;
    }
    Ok(CopyStats {
        files: 1,
        bytes,
        ..CopyStats::default()
    })
}
