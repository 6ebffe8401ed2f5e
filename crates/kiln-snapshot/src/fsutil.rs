//! Low-level helpers shared by both snapshotters: xattrs, overlay markers, metadata copies.

use std::ffi::{CString, OsStr, OsString};
use std::fs::{self, Metadata};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use nix::sys::stat::{Mode, SFlag, UtimensatFlags, mknod, utimensat};
use nix::sys::time::TimeSpec;

use crate::error::{IoContext, Result};

/// The xattr overlayfs uses to mark a directory that hides everything below it.
pub(crate) const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// Marks a directory the copy snapshotter took from the lowers (absent on a replaced one).
pub(crate) const LOWER_MARKER_XATTR: &str = "trusted.kiln.lower";
/// Prefixes of bookkeeping xattrs (overlayfs' and ours), never copied between trees.
const PRIVATE_PREFIXES: [&[u8]; 2] = [b"trusted.overlay.", b"trusted.kiln."];

fn cpath(path: &Path) -> std::io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| std::io::ErrorKind::InvalidInput.into())
}

fn cname(name: &OsStr) -> std::io::Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| std::io::ErrorKind::InvalidInput.into())
}

/// Runs a size-probing xattr call twice: once for the size, once for the bytes.
fn read_sized(mut call: impl FnMut(*mut libc::c_void, usize) -> isize) -> std::io::Result<Vec<u8>> {
    loop {
        let size = call(std::ptr::null_mut(), 0);
        if size < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut buf = vec![0u8; size.unsigned_abs()];
        let got = call(buf.as_mut_ptr().cast(), buf.len());
        if got >= 0 {
            buf.truncate(got.unsigned_abs());
            return Ok(buf);
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ERANGE) {
            return Err(err);
        }
    }
}

/// The names of `path`'s xattrs (not following symlinks); empty where xattrs are unsupported.
pub(crate) fn list_xattrs(path: &Path) -> std::io::Result<Vec<OsString>> {
    let p = cpath(path)?;
    // SAFETY: `p` is a valid C string; the buffer pointer/length pair comes from `read_sized`.
    let raw = match read_sized(|buf, len| unsafe { libc::llistxattr(p.as_ptr(), buf.cast(), len) })
    {
        Ok(raw) => raw,
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(raw
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| OsString::from_vec(n.to_vec()))
        .collect())
}

/// The value of xattr `name` on `path`, `None` when it is absent.
pub(crate) fn get_xattr(path: &Path, name: &str) -> std::io::Result<Option<Vec<u8>>> {
    let p = cpath(path)?;
    let n = cname(OsStr::new(name))?;
    // SAFETY: both strings are valid C strings; the buffer comes from `read_sized`.
    match read_sized(|buf, len| unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf, len) }) {
        Ok(v) => Ok(Some(v)),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENODATA | libc::ENOTSUP)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Sets xattr `name` on `path` without following symlinks.
pub(crate) fn set_xattr(path: &Path, name: &OsStr, value: &[u8]) -> std::io::Result<()> {
    let p = cpath(path)?;
    let n = cname(name)?;
    // SAFETY: valid C strings and a live slice.
    let rc = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Removes overlayfs' bookkeeping xattrs (`origin`, `impure`, ...) from `path`, keeping the
/// opaque marker, so an upper dir carries only what a layer should.
pub(crate) fn strip_overlay_xattrs(path: &Path) -> Result<()> {
    for name in list_xattrs(path).at("listing xattrs of", path)? {
        if name.as_bytes().starts_with(PRIVATE_PREFIXES[0]) && name != OPAQUE_XATTR {
            let (p, n) = (
                cpath(path).at("naming", path)?,
                cname(&name).at("naming", path)?,
            );
            // SAFETY: both are valid C strings.
            if unsafe { libc::lremovexattr(p.as_ptr(), n.as_ptr()) } < 0 {
                return Err(std::io::Error::last_os_error()).at("removing xattr of", path);
            }
        }
    }
    Ok(())
}

/// The xattrs that belong to the file itself, i.e. not overlayfs' bookkeeping, sorted.
pub(crate) fn own_xattrs(path: &Path) -> Result<Vec<(OsString, Vec<u8>)>> {
    let mut out = Vec::new();
    for name in list_xattrs(path).at("listing xattrs of", path)? {
        if PRIVATE_PREFIXES
            .iter()
            .any(|p| name.as_bytes().starts_with(p))
        {
            continue;
        }
        let key = name.to_string_lossy().into_owned();
        if let Some(v) = get_xattr(path, &key).at("reading xattr of", path)? {
            out.push((name, v));
        }
    }
    out.sort();
    Ok(out)
}

/// True for an overlay whiteout: a character device numbered 0/0.
pub(crate) fn is_whiteout(meta: &Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// True for a directory marked opaque.
pub(crate) fn is_opaque(path: &Path) -> Result<bool> {
    Ok(get_xattr(path, OPAQUE_XATTR)
        .at("reading xattr of", path)?
        .as_deref()
        == Some(b"y"))
}

/// Marks `dir` opaque, as overlayfs does for a directory that replaced a lower one.
pub(crate) fn set_opaque(dir: &Path) -> Result<()> {
    set_xattr(dir, OsStr::new(OPAQUE_XATTR), b"y").at("marking opaque", dir)
}

/// Creates a whiteout (0/0 character device) at `path`.
pub(crate) fn make_whiteout(path: &Path) -> Result<()> {
    mknod(path, SFlag::S_IFCHR, Mode::empty(), 0).at("creating whiteout", path)
}

/// Copies owner, permissions, xattrs and timestamps of `meta` (read from `src`) onto `dst`.
pub(crate) fn copy_metadata(src: &Path, meta: &Metadata, dst: &Path) -> Result<()> {
    std::os::unix::fs::lchown(dst, Some(meta.uid()), Some(meta.gid())).at("chown", dst)?;
    if !meta.file_type().is_symlink() {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dst, fs::Permissions::from_mode(meta.mode() & 0o7777))
            .at("chmod", dst)?;
    }
    for (name, value) in own_xattrs(src)? {
        set_xattr(dst, &name, &value).at("setting xattr on", dst)?;
    }
    set_times(meta, dst)
}

/// Sets `dst`'s atime and mtime to those in `meta`, not following symlinks.
pub(crate) fn set_times(meta: &Metadata, dst: &Path) -> Result<()> {
    let atime = TimeSpec::new(meta.atime(), meta.atime_nsec());
    let mtime = TimeSpec::new(meta.mtime(), meta.mtime_nsec());
    utimensat(None, dst, &atime, &mtime, UtimensatFlags::NoFollowSymlink)
        .at("setting times of", dst)
}

/// Copies one non-directory entry (file, symlink, device, fifo, socket) with its metadata.
pub(crate) fn copy_leaf(src: &Path, meta: &Metadata, dst: &Path) -> Result<()> {
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target = fs::read_link(src).at("reading link", src)?;
        std::os::unix::fs::symlink(target, dst).at("creating symlink", dst)?;
    } else if ft.is_file() {
        fs::copy(src, dst).at("copying file to", dst)?;
    } else {
        let kind = if ft.is_char_device() {
            SFlag::S_IFCHR
        } else if ft.is_block_device() {
            SFlag::S_IFBLK
        } else if ft.is_fifo() {
            SFlag::S_IFIFO
        } else {
            SFlag::S_IFSOCK
        };
        mknod(
            dst,
            kind,
            Mode::from_bits_truncate(meta.mode() & 0o7777),
            meta.rdev(),
        )
        .at("mknod", dst)?;
    }
    copy_metadata(src, meta, dst)
}

/// Removes whatever is at `path` (file or whole tree); absent is fine.
pub(crate) fn remove_any(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path).at("removing", path),
        Ok(_) => fs::remove_file(path).at("removing", path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).at("inspecting", path),
    }
}

/// Whether two entries carry the same metadata (type, mode, owner, size, mtime, rdev, xattrs).
pub(crate) fn same_metadata(a: &Path, am: &Metadata, b: &Path, bm: &Metadata) -> Result<bool> {
    let same = am.mode() == bm.mode()
        && am.uid() == bm.uid()
        && am.gid() == bm.gid()
        && am.mtime() == bm.mtime()
        && am.mtime_nsec() == bm.mtime_nsec()
        && am.rdev() == bm.rdev()
        && (am.is_dir() || am.size() == bm.size());
    Ok(same && own_xattrs(a)? == own_xattrs(b)?)
}
