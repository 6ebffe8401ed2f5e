//! Copying walked source entries onto the destination with BuildKit's
//! copier rules: links copied as links, hardlinks kept within one source,
//! existing directories merged, existing files and links replaced, then
//! owner, mode, xattrs and timestamps applied (directory times last).

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt, lchown, symlink};
use std::path::{Path, PathBuf};

use filetime::FileTime;
use kiln_context::{Context, Entry, FileKind};
use kiln_dockerfile::instructions::Chmod;

use crate::error::{Error, IoContext, Result};
use crate::owner::Owner;

/// Counts of what a copy created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyStats {
    /// Regular files written (hardlinks excluded).
    pub files: u64,
    /// Directories created or merged (not counting created parents).
    pub dirs: u64,
    /// Symbolic links created.
    pub symlinks: u64,
    /// Hardlinks made to a file copied earlier in the same source.
    pub hardlinks: u64,
    /// Bytes of file content written.
    pub bytes: u64,
}

impl CopyStats {
    pub(crate) fn add(&mut self, other: Self) {
        self.files += other.files;
        self.dirs += other.dirs;
        self.symlinks += other.symlinks;
        self.hardlinks += other.hardlinks;
        self.bytes += other.bytes;
    }
}

/// How entries' metadata is set.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// `--chown`, resolved.
    pub chown: Option<Owner>,
    /// Keep the source's uid/gid when there is no `--chown` (stage sources);
    /// otherwise 0:0, as BuildKit's context transfer resets owners.
    pub keep_owner: bool,
    /// Copy extended attributes (stage sources; the context transfer drops them).
    pub xattrs: bool,
    /// `--chmod`.
    pub chmod: Option<Chmod>,
}

/// Copies entries of ONE source (hardlinks are tracked per source, as
/// BuildKit tracks them per copy call).
pub(crate) struct Copier<'a> {
    ctx: &'a Context,
    plan: &'a Plan,
    stats: CopyStats,
    links: HashMap<(u64, u64), PathBuf>,
    dir_times: Vec<(PathBuf, FileTime, FileTime)>,
}

impl<'a> Copier<'a> {
    pub fn new(ctx: &'a Context, plan: &'a Plan) -> Self {
        Self {
            ctx,
            plan,
            stats: CopyStats::default(),
            links: HashMap::new(),
            dir_times: Vec::new(),
        }
    }

    /// Copies one entry to `target`, whose parent must exist.
    pub fn entry(&mut self, entry: &Entry, target: &Path) -> Result<()> {
        match entry.kind {
            FileKind::Dir => self.dir(entry, target),
            FileKind::File => self.file(entry, target),
            FileKind::Symlink => self.symlink(entry, target),
            FileKind::Other => self.special(entry, target),
        }
    }

    /// Applies deferred directory timestamps (children changed them) and
    /// returns the counts.
    pub fn finish(self) -> Result<CopyStats> {
        for (path, atime, mtime) in self.dir_times.iter().rev() {
            filetime::set_symlink_file_times(path, *atime, *mtime).at("setting times", path)?;
        }
        Ok(self.stats)
    }

    /// Gives an existing destination directory the source directory's
    /// timestamps only (BuildKit's copier does so for the top directory).
    pub fn dir_times_only(&mut self, entry: &Entry, target: &Path) {
        let (atime, mtime) = times(&entry.metadata);
        self.dir_times.push((target.to_path_buf(), atime, mtime));
    }

    fn dir(&mut self, entry: &Entry, target: &Path) -> Result<()> {
        match fs::symlink_metadata(target) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(Error::NotADirectory(target.to_path_buf())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(target).at("mkdir", target)?;
            }
            Err(e) => return Err(e).at("stat", target),
        }
        self.stats.dirs += 1;
        self.apply_owner_mode(entry, target)?;
        let (atime, mtime) = times(&entry.metadata);
        self.dir_times.push((target.to_path_buf(), atime, mtime));
        Ok(())
    }

    fn file(&mut self, entry: &Entry, target: &Path) -> Result<()> {
        replaceable(target)?;
        let key = (entry.metadata.dev(), entry.metadata.ino());
        if entry.metadata.nlink() > 1 {
            if let Some(first) = self.links.get(&key) {
                fs::hard_link(first, target).at("linking", target)?;
                self.stats.hardlinks += 1;
                return Ok(());
            }
            self.links.insert(key, target.to_path_buf());
        }
        let mut src = self.ctx.open(entry)?;
        let mut dst = create_new(target)?;
        let n = io::copy(&mut src, &mut dst).at("writing", target)?;
        self.stats.files += 1;
        self.stats.bytes += n;
        self.finish_entry(entry, target)
    }

    fn symlink(&mut self, entry: &Entry, target: &Path) -> Result<()> {
        let src = self.source_path(entry);
        let link = fs::read_link(&src).at("readlink", &src)?;
        replaceable(target)?;
        symlink(&link, target).at("symlink", target)?;
        self.stats.symlinks += 1;
        self.finish_entry(entry, target)
    }

    fn special(&mut self, entry: &Entry, target: &Path) -> Result<()> {
        replaceable(target)?;
        let mode = entry.metadata.mode();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            target,
            rustix::fs::FileType::from_raw_mode(mode),
            rustix::fs::Mode::from_raw_mode(mode),
            entry.metadata.rdev(),
        )
        .map_err(io::Error::from)
        .at("mknod", target)?;
        self.finish_entry(entry, target)
    }

    /// Owner, mode, xattrs, then timestamps (last, as they are what the
    /// other steps would disturb).
    fn finish_entry(&self, entry: &Entry, target: &Path) -> Result<()> {
        self.apply_owner_mode(entry, target)?;
        let (atime, mtime) = times(&entry.metadata);
        filetime::set_symlink_file_times(target, atime, mtime).at("setting times", target)
    }

    fn apply_owner_mode(&self, entry: &Entry, target: &Path) -> Result<()> {
        let meta = &entry.metadata;
        let owner = self.plan.chown.unwrap_or(if self.plan.keep_owner {
            Owner {
                uid: meta.uid(),
                gid: meta.gid(),
            }
        } else {
            Owner::ROOT
        });
        lchown(target, Some(owner.uid), Some(owner.gid)).at("chown", target)?;
        if self.plan.xattrs {
            copy_xattrs(&self.source_path(entry), target);
        }
        if entry.kind == FileKind::Symlink {
            return Ok(());
        }
        let mode = match &self.plan.chmod {
            Some(c) => c.apply(meta.mode(), entry.kind == FileKind::Dir),
            None => meta.mode() & 0o7777,
        };
        fs::set_permissions(target, fs::Permissions::from_mode(mode)).at("chmod", target)
    }

    fn source_path(&self, entry: &Entry) -> PathBuf {
        self.ctx.root().join(&entry.context_path)
    }
}

/// Makes room for a non-directory at `target`: an existing file or link is
/// removed (never followed), an existing directory is an error.
pub(crate) fn replaceable(target: &Path) -> Result<()> {
    match fs::symlink_metadata(target) {
        Ok(m) if m.is_dir() => Err(Error::ReplaceDirectory(target.to_path_buf())),
        Ok(_) => fs::remove_file(target).at("removing", target),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).at("stat", target),
    }
}

/// A new file that refuses to exist already or to be a link.
pub(crate) fn create_new(path: &Path) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .at("creating", path)
}

fn times(meta: &fs::Metadata) -> (FileTime, FileTime) {
    (
        FileTime::from_last_access_time(meta),
        FileTime::from_last_modification_time(meta),
    )
}

/// Copies every extended attribute; failures (unsupported, `security.*`
/// without privilege) are skipped, as BuildKit's copier only logs them.
fn copy_xattrs(src: &Path, dst: &Path) {
    let Some(names) = list_xattrs(src) else {
        return;
    };
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let Ok(name) =
            std::ffi::CStr::from_bytes_with_nul(&[name, b"\0"].concat()).map(|c| c.to_owned())
        else {
            continue;
        };
        if let Some(value) = get_xattr(src, &name) {
            let _ = rustix::fs::lsetxattr(dst, &name, &value, rustix::fs::XattrFlags::empty());
        }
    }
}

/// Linux caps both a name list and a value at 64 KiB (`XATTR_*_MAX`).
const XATTR_MAX: usize = 64 * 1024;

fn list_xattrs(path: &Path) -> Option<Vec<u8>> {
    read_sized(|buf| rustix::fs::llistxattr(path, buf))
}

fn get_xattr(path: &Path, name: &std::ffi::CStr) -> Option<Vec<u8>> {
    read_sized(|buf| rustix::fs::lgetxattr(path, name, buf))
}

/// Calls `read` with a small buffer, then the maximum size on `ERANGE`.
fn read_sized(read: impl Fn(&mut [u8]) -> rustix::io::Result<usize>) -> Option<Vec<u8>> {
    for size in [4096, XATTR_MAX] {
        let mut buf = vec![0; size];
        match read(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Some(buf);
            }
            Err(rustix::io::Errno::RANGE) => continue,
            Err(_) => return None,
        }
    }
    None
}
