//! Safe unpacking of a `docker build -` tar context into a private directory.
//! Every entry path is checked lexically (no `..`, leading `/` stripped) and
//! every parent is created or verified as a real directory, so no entry can
//! be written through a symlink or outside the target.

use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt, lchown, symlink};
use std::path::{Component, Path, PathBuf};

use filetime::FileTime;
use tar::{Archive, Entry, EntryType};

use crate::error::{Error, Result, io_err};

/// Unpacks a tar stream into `dest`, sniffing the compressions docker
/// accepts for `docker build -`: gzip, bzip2, xz, zstd or none.
pub(crate) fn unpack(reader: impl Read, dest: &Path) -> Result<()> {
    let mut reader = BufReader::new(reader);
    let magic = reader.fill_buf().map_err(Error::Tar)?;
    if magic.starts_with(&[0x1f, 0x8b]) {
        unpack_tar(flate2::read::GzDecoder::new(reader), dest)
    } else if magic.starts_with(b"BZh") {
        unpack_tar(bzip2::read::BzDecoder::new(reader), dest)
    } else if magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        unpack_tar(xz2::read::XzDecoder::new(reader), dest)
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let decoder = zstd::Decoder::with_buffer(reader).map_err(Error::Tar)?;
        unpack_tar(decoder, dest)
    } else {
        unpack_tar(reader, dest)
    }
}

/// Directory metadata, applied after all entries so read-only directories
/// can still be filled.
struct DirMeta {
    path: PathBuf,
    mode: u32,
    mtime: FileTime,
}

fn unpack_tar(reader: impl Read, dest: &Path) -> Result<()> {
    let mut archive = Archive::new(reader);
    let chown = rustix::process::geteuid().is_root();
    let mut dirs = Vec::new();
    for entry in archive.entries().map_err(Error::Tar)? {
        let mut entry = entry.map_err(Error::Tar)?;
        if let Some(dir) = unpack_entry(&mut entry, dest, chown)? {
            dirs.push(dir);
        }
    }
    for dir in dirs.iter().rev() {
        fs::set_permissions(&dir.path, fs::Permissions::from_mode(dir.mode))
            .map_err(io_err("chmod", &dir.path))?;
        filetime::set_file_mtime(&dir.path, dir.mtime)
            .map_err(io_err("setting mtime", &dir.path))?;
    }
    Ok(())
}

fn unpack_entry<R: Read>(
    entry: &mut Entry<'_, R>,
    dest: &Path,
    chown: bool,
) -> Result<Option<DirMeta>> {
    let raw = entry.path().map_err(Error::Tar)?;
    let shown = raw.to_string_lossy().into_owned();
    let Some(rel) = safe_rel(&raw, &shown)? else {
        return Ok(None);
    };
    let header = entry.header();
    let mode = header.mode().map_err(Error::Tar)? & 0o7777;
    // Blank numeric fields occur in hand-made archives; treat them as zero.
    let mtime = header.mtime().ok().and_then(|t| i64::try_from(t).ok());
    let mtime = FileTime::from_unix_time(mtime.unwrap_or(0), 0);
    let owner = (header.uid().unwrap_or(0), header.gid().unwrap_or(0));
    let target = dest.join(&rel);
    let kind = header.entry_type();
    ensure_parents(dest, &rel, &shown)?;
    match kind {
        EntryType::Directory => {
            make_dir(&target, &shown)?;
            set_owner(&target, owner, chown)?;
            return Ok(Some(DirMeta {
                path: target,
                mode,
                mtime,
            }));
        }
        EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
            write_file(entry, &target, mode, &shown)?
        }
        EntryType::Symlink => {
            let link = entry.link_name().map_err(Error::Tar)?.unwrap_or_default();
            replace_non_dir(&target, &shown)?;
            symlink(&link, &target).map_err(io_err("creating symlink", &target))?;
        }
        EntryType::Link => hard_link(entry, dest, &target, &shown)?,
        // Device nodes and FIFOs are not recreated in an unprivileged copy.
        _ => return Ok(None),
    }
    set_owner(&target, owner, chown)?;
    filetime::set_symlink_file_times(&target, mtime, mtime)
        .map_err(io_err("setting mtime", &target))?;
    Ok(None)
}

/// The entry path made relative; `None` for the archive root itself.
fn safe_rel(raw: &Path, shown: &str) -> Result<Option<PathBuf>> {
    let mut rel = PathBuf::new();
    for component in raw.components() {
        match component {
            Component::Normal(part) => rel.push(part),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(unsafe_entry(shown, "path contains `..`"));
            }
        }
    }
    Ok((!rel.as_os_str().is_empty()).then_some(rel))
}

/// Creates missing parents of `rel`; an existing non-directory parent
/// (notably a symlink) is refused rather than followed.
fn ensure_parents(dest: &Path, rel: &Path, shown: &str) -> Result<()> {
    let mut current = dest.to_path_buf();
    let Some(parent) = rel.parent() else {
        return Ok(());
    };
    for part in parent.components() {
        current.push(part);
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(unsafe_entry(shown, "parent is not a directory")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&current).map_err(io_err("creating directory", &current))?;
            }
            Err(e) => return Err(io_err("stat", &current)(e)),
        }
    }
    Ok(())
}

fn make_dir(target: &Path, shown: &str) -> Result<()> {
    match fs::symlink_metadata(target) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => {
            replace_non_dir(target, shown)?;
            fs::create_dir(target).map_err(io_err("creating directory", target))
        }
        Err(_) => fs::create_dir(target).map_err(io_err("creating directory", target)),
    }
}

/// Removes an existing non-directory at `target` (later entries win).
fn replace_non_dir(target: &Path, shown: &str) -> Result<()> {
    match fs::symlink_metadata(target) {
        Ok(meta) if meta.is_dir() => Err(unsafe_entry(shown, "would replace a directory")),
        Ok(_) => fs::remove_file(target).map_err(io_err("removing", target)),
        Err(_) => Ok(()),
    }
}

fn write_file<R: Read>(
    entry: &mut Entry<'_, R>,
    target: &Path,
    mode: u32,
    shown: &str,
) -> Result<()> {
    replace_non_dir(target, shown)?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(target)
        .map_err(io_err("creating", target))?;
    io::copy(entry, &mut file).map_err(io_err("writing", target))?;
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(io_err("chmod", target))
}

/// Hard links must point at an already unpacked, in-archive path.
fn hard_link<R: Read>(entry: &Entry<'_, R>, dest: &Path, target: &Path, shown: &str) -> Result<()> {
    let link = entry.link_name().map_err(Error::Tar)?.unwrap_or_default();
    let Some(source_rel) = safe_rel(&link, shown)? else {
        return Err(unsafe_entry(shown, "hard link to the archive root"));
    };
    check_real_parents(dest, &source_rel, shown)?;
    let source = dest.join(&source_rel);
    replace_non_dir(target, shown)?;
    fs::hard_link(&source, target).map_err(io_err("linking", target))
}

/// Verifies each parent of `rel` already exists as a real directory.
fn check_real_parents(dest: &Path, rel: &Path, shown: &str) -> Result<()> {
    let mut current = dest.to_path_buf();
    for part in rel.parent().into_iter().flat_map(Path::components) {
        current.push(part);
        let is_dir = fs::symlink_metadata(&current).is_ok_and(|m| m.is_dir());
        if !is_dir {
            return Err(unsafe_entry(shown, "hard link through a non-directory"));
        }
    }
    Ok(())
}

fn set_owner(target: &Path, (uid, gid): (u64, u64), chown: bool) -> Result<()> {
    if !chown {
        return Ok(());
    }
    let uid = u32::try_from(uid).ok();
    let gid = u32::try_from(gid).ok();
    lchown(target, uid, gid).map_err(io_err("chown", target))
}

fn unsafe_entry(shown: &str, reason: &'static str) -> Error {
    Error::UnsafeTarEntry {
        path: shown.to_owned(),
        reason,
    }
}
