//! Applying a layer tar to a directory, confined to that directory.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use kiln_content::{Digest, Sha256Writer};
use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Timespec, Timestamps, Uid, XattrFlags};
use rustix::io::Errno;
use tar::EntryType;

use crate::header::PAX_XATTR;
use crate::root::{Root, proc_path};
use crate::{Compression, Error, OPAQUE_WHITEOUT, Result, WHITEOUT_PREFIX, compress};

/// Overlay's private xattr namespaces: a layer must not forge them.
const OVERLAY_XATTR_PREFIXES: [&str; 2] = ["trusted.overlay.", "user.overlay."];
/// Xattr that marks an overlay upper/lower directory as opaque.
const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// Prefix of AUFS metadata entries other than the opaque marker; ignored.
const WHITEOUT_META_PREFIX: &[u8] = b".wh..wh.";

/// What to do with whiteout entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhiteoutMode {
    /// Delete what they hide from the destination, which holds the lower
    /// layers already (flattening into one rootfs).
    #[default]
    Apply,
    /// Turn them back into overlayfs markers (0/0 char devices and the
    /// `trusted.overlay.opaque` xattr): for unpacking one layer into a fresh
    /// directory that will be stacked as an overlay lower dir.
    Overlay,
}

/// How [`unpack_layer`] treats the layer.
#[derive(Debug, Clone, Default)]
pub struct UnpackOptions {
    /// Flatten onto lower layers, or keep overlay markers.
    pub whiteouts: WhiteoutMode,
}

/// What [`unpack_layer`] did, plus the layer's digests computed on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackStats {
    /// Compression detected from the blob's magic bytes.
    pub compression: Compression,
    /// sha256 of the uncompressed tar: check it against the config's diff_id.
    pub diff_id: Digest,
    /// Size of the uncompressed tar.
    pub uncompressed_size: u64,
    /// Entries applied, whiteouts included.
    pub entries: u64,
    /// Whiteout and opaque-marker entries among them.
    pub whiteouts: u64,
    /// Bytes of regular file content written.
    pub bytes: u64,
}

/// Unpacks a (gzip, zstd or plain) layer tar into `dest`, as root.
///
/// Entry paths are taken relative to `dest` (leading `/` ignored), `..` that
/// would climb above `dest` is rejected, and parent directories are resolved
/// with `openat2(RESOLVE_IN_ROOT)`: symlinks inside `dest` are followed as if
/// `dest` were `/` (the semantics of containerd's unpacker), so neither a
/// symlink nor a hardlink in a layer can reach the host. Needs `/proc` for
/// xattrs on non-regular files and for removing directories.
pub fn unpack_layer(reader: impl Read, dest: &Path, opts: &UnpackOptions) -> Result<UnpackStats> {
    let (compression, tar) = compress::decompress(reader).map_err(Error::Read)?;
    let root = Root::open(dest).map_err(|source| Error::Entry {
        path: dest.display().to_string(),
        source,
    })?;
    let mut archive = tar::Archive::new(HashingReader::new(tar));
    let mut unpacker = Unpacker {
        root,
        mode: opts.whiteouts,
        written: HashSet::new(),
        dir_times: Vec::new(),
        entries: 0,
        whiteouts: 0,
        bytes: 0,
    };
    for entry in archive.entries().map_err(Error::Read)? {
        unpacker.apply(&mut entry.map_err(Error::Read)?)?;
    }
    unpacker.set_dir_times()?;
    // Hash what follows the end-of-archive marker too: it is part of the blob.
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(Error::Read)?;
    let (diff_id, uncompressed_size) = rest.finish();
    Ok(UnpackStats {
        compression,
        diff_id,
        uncompressed_size,
        entries: unpacker.entries,
        whiteouts: unpacker.whiteouts,
        bytes: unpacker.bytes,
    })
}

/// Hashes everything read through it.
struct HashingReader<R> {
    inner: R,
    hash: Sha256Writer<io::Sink>,
}

impl<R: Read> HashingReader<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            hash: Sha256Writer::new(io::sink()),
        }
    }

    fn finish(self) -> (Digest, u64) {
        let (_, digest, size) = self.hash.finish();
        (digest, size)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// Ownership, mode, times and xattrs of an entry.
struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: Timespec,
    xattrs: Vec<(String, Vec<u8>)>,
}

struct Unpacker {
    root: Root,
    mode: WhiteoutMode,
    /// Cleaned paths this layer wrote: whiteouts and opaque markers only
    /// hide lower-layer content, never this layer's own.
    written: HashSet<Vec<u8>>,
    /// Directory mtimes, set last because creating children changes them.
    dir_times: Vec<(Vec<u8>, Timespec)>,
    entries: u64,
    whiteouts: u64,
    bytes: u64,
}

impl Unpacker {
    fn apply<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let comps =
            clean(&raw).ok_or_else(|| unsafe_entry(&shown, "path climbs out of the layer root"))?;
        let Some((name, parent)) = comps.split_last() else {
            // The root directory itself: dest's own metadata is the caller's.
            return Ok(());
        };
        self.entries += 1;
        if name.starts_with(WHITEOUT_PREFIX.as_bytes()) {
            return self.whiteout(parent, name, &shown);
        }
        // Validate before touching the destination.
        let kind = entry.header().entry_type();
        let link = match kind {
            EntryType::Link => Some(link_target(entry, &shown)?),
            EntryType::Symlink => Some(entry.link_name_bytes().unwrap_or_default().into_owned()),
            EntryType::Regular
            | EntryType::Continuous
            | EntryType::Directory
            | EntryType::Char
            | EntryType::Block
            | EntryType::Fifo => None,
            other => {
                return Err(Error::Unsupported {
                    path: shown,
                    kind: char::from(other.as_byte()),
                });
            }
        };
        let key = comps.join(&b'/');
        self.create(entry, parent, name, &key, link.as_deref())
            .map_err(|e| entry_err(&shown, e))?;
        self.written.insert(key);
        Ok(())
    }

    /// Creates the entry `name` in directory `parent`, replacing what was there.
    fn create<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        parent: &[&[u8]],
        name: &[u8],
        key: &[u8],
        link: Option<&[u8]>,
    ) -> io::Result<()> {
        let kind = entry.header().entry_type();
        let meta = read_meta(entry)?;
        let pfd = self.root.dir(parent, true)?;
        let dir = pfd.as_fd();
        let keep_dir = make_room(dir, name, kind.is_dir())?;
        match kind {
            EntryType::Directory => {
                if !keep_dir {
                    rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o700))?;
                }
                directory(dir, name, &meta)?;
                self.dir_times.push((key.to_vec(), meta.mtime));
                Ok(())
            }
            EntryType::Link => self.hardlink(link.unwrap_or_default(), dir, name),
            EntryType::Symlink => {
                rustix::fs::symlinkat(link.unwrap_or_default(), dir, name)?;
                special_meta(dir, name, &meta, false)
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                node(entry.header(), kind, dir, name, &meta)
            }
            _ => self.regular(entry, dir, name, &meta),
        }
    }

    fn regular<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        dir: BorrowedFd<'_>,
        name: &[u8],
        meta: &Meta,
    ) -> io::Result<()> {
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(dir, name, flags, Mode::from_raw_mode(0o600))?;
        let mut file = File::from(fd);
        self.bytes += io::copy(entry, &mut file)?;
        apply_fd_meta(file.as_fd(), meta)?;
        rustix::fs::futimens(&file, &times(meta.mtime))?;
        Ok(())
    }

    /// Links `name` to `target`, an earlier path already checked by
    /// [`link_target`] and resolved inside the root like any other path.
    fn hardlink(&self, target: &[u8], dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
        let comps: Vec<&[u8]> = target.split(|&b| b == b'/').collect();
        let Some((tname, tparent)) = comps.split_last() else {
            return Err(invalid("empty hardlink target"));
        };
        let tdir = self.root.dir(tparent, false)?;
        rustix::fs::linkat(&tdir, *tname, dir, name, AtFlags::empty())?;
        Ok(())
    }

    fn whiteout(&mut self, parent: &[&[u8]], name: &[u8], shown: &str) -> Result<()> {
        self.whiteouts += 1;
        let opaque = name == OPAQUE_WHITEOUT.as_bytes();
        if !opaque && name.starts_with(WHITEOUT_META_PREFIX) {
            return Ok(());
        }
        let hidden = &name[WHITEOUT_PREFIX.len()..];
        if !opaque && matches!(hidden, b"" | b"." | b"..") {
            return Err(unsafe_entry(shown, "malformed whiteout name"));
        }
        let create = self.mode == WhiteoutMode::Overlay;
        let pfd = match self.root.dir(parent, create) {
            Ok(fd) => fd,
            // Nothing below to hide.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(entry_err(shown, e)),
        };
        let result = match self.mode {
            _ if opaque => self.opaque(parent, pfd.as_fd()),
            WhiteoutMode::Apply if self.written.contains(&join(parent, hidden)) => Ok(()),
            WhiteoutMode::Apply => remove_any(pfd.as_fd(), hidden),
            WhiteoutMode::Overlay => make_room(pfd.as_fd(), hidden, false).and_then(|_| {
                let dev = rustix::fs::makedev(0, 0);
                rustix::fs::mknodat(&pfd, hidden, FileType::CharacterDevice, Mode::empty(), dev)
                    .map_err(Into::into)
            }),
        };
        result.map_err(|e| entry_err(shown, e))
    }

    /// Hides lower-layer content of a directory.
    fn opaque(&self, parent: &[&[u8]], dir: BorrowedFd<'_>) -> io::Result<()> {
        if self.mode == WhiteoutMode::Overlay {
            return rustix::fs::fsetxattr(dir, OVERLAY_OPAQUE_XATTR, b"y", XattrFlags::empty())
                .map_err(Into::into);
        }
        for child in rustix::fs::Dir::read_from(dir)? {
            let child = child?;
            let name = child.file_name().to_bytes();
            if name == b"." || name == b".." || self.written.contains(&join(parent, name)) {
                continue;
            }
            remove_any(dir, name)?;
        }
        Ok(())
    }

    fn set_dir_times(&self) -> Result<()> {
        for (path, mtime) in &self.dir_times {
            let shown = String::from_utf8_lossy(path).into_owned();
            let comps: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
            let Some((name, parent)) = comps.split_last() else {
                continue;
            };
            let dir = match self.root.dir(parent, false) {
                Ok(fd) => fd,
                // Removed by a later entry of the layer.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(entry_err(&shown, e)),
            };
            match rustix::fs::utimensat(&dir, *name, &times(*mtime), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(e) => return Err(entry_err(&shown, e.into())),
            }
        }
        Ok(())
    }
}

/// Splits an entry path into components, dropping `.`, empty components and
/// a leading `/`, resolving `..` lexically. `None` if `..` climbs above the root.
fn clean(path: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out: Vec<&[u8]> = Vec::new();
    for comp in path.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                out.pop()?;
            }
            c => out.push(c),
        }
    }
    Some(out)
}

/// The cleaned target path of a hardlink entry. A target outside the
/// destination cannot be expressed: `..` above the root is rejected.
fn link_target<R: Read>(entry: &tar::Entry<'_, R>, shown: &str) -> Result<Vec<u8>> {
    let link = entry
        .link_name_bytes()
        .ok_or_else(|| unsafe_entry(shown, "hardlink without a target"))?;
    let comps = clean(&link)
        .ok_or_else(|| unsafe_entry(shown, "hardlink target climbs out of the layer root"))?;
    if comps.is_empty() {
        return Err(unsafe_entry(shown, "hardlink to the layer root"));
    }
    Ok(comps.join(&b'/'))
}

fn join(parent: &[&[u8]], name: &[u8]) -> Vec<u8> {
    let mut comps = parent.to_vec();
    comps.push(name);
    comps.join(&b'/')
}

/// Removes whatever is at `name` unless both it and the new entry are
/// directories (directories merge). Returns whether a directory was kept.
fn make_room(dir: BorrowedFd<'_>, name: &[u8], new_is_dir: bool) -> io::Result<bool> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Err(Errno::NOENT) => Ok(false),
        Err(e) => Err(e.into()),
        Ok(st) if new_is_dir && FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
            Ok(true)
        }
        Ok(_) => remove_any(dir, name).map(|()| false),
    }
}

/// Removes a file, symlink or whole directory tree named `name` in `dir`,
/// never following symlinks. Missing entries are fine.
fn remove_any(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        // std's remove_dir_all does not follow symlinks inside the tree.
        Err(Errno::ISDIR) => fs::remove_dir_all(proc_path(dir, name)),
        Err(e) => Err(e.into()),
    }
}

fn directory(parent: BorrowedFd<'_>, name: &[u8], meta: &Meta) -> io::Result<()> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(parent, name, flags, Mode::empty())?;
    apply_fd_meta(fd.as_fd(), meta)
}

fn node(
    header: &tar::Header,
    kind: EntryType,
    dir: BorrowedFd<'_>,
    name: &[u8],
    meta: &Meta,
) -> io::Result<()> {
    let (file_type, dev) = if kind == EntryType::Fifo {
        (FileType::Fifo, 0)
    } else {
        let major = header.device_major()?.unwrap_or(0);
        let minor = header.device_minor()?.unwrap_or(0);
        let ft = if kind == EntryType::Char {
            FileType::CharacterDevice
        } else {
            FileType::BlockDevice
        };
        (ft, rustix::fs::makedev(major, minor))
    };
    rustix::fs::mknodat(dir, name, file_type, Mode::empty(), dev)?;
    special_meta(dir, name, meta, true)
}

/// Owner, mode (after chown, which clears set-id bits) and xattrs via an fd.
fn apply_fd_meta(fd: BorrowedFd<'_>, meta: &Meta) -> io::Result<()> {
    rustix::fs::fchown(
        fd,
        Some(Uid::from_raw(meta.uid)),
        Some(Gid::from_raw(meta.gid)),
    )?;
    rustix::fs::fchmod(fd, Mode::from_raw_mode(meta.mode))?;
    for (key, value) in &meta.xattrs {
        rustix::fs::fsetxattr(fd, key.as_str(), value, XattrFlags::empty())?;
    }
    Ok(())
}

/// Metadata of symlinks and nodes, which cannot be opened for writing.
fn special_meta(dir: BorrowedFd<'_>, name: &[u8], meta: &Meta, chmod: bool) -> io::Result<()> {
    let (uid, gid) = (Uid::from_raw(meta.uid), Gid::from_raw(meta.gid));
    rustix::fs::chownat(dir, name, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW)?;
    if chmod {
        // The node was just created here, so following is moot.
        rustix::fs::chmodat(dir, name, Mode::from_raw_mode(meta.mode), AtFlags::empty())?;
    }
    for (key, value) in &meta.xattrs {
        rustix::fs::lsetxattr(
            proc_path(dir, name),
            key.as_str(),
            value,
            XattrFlags::empty(),
        )?;
    }
    rustix::fs::utimensat(dir, name, &times(meta.mtime), AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

/// Reads metadata from the header, overridden by PAX records.
fn read_meta<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Meta> {
    let h = entry.header();
    let old = h.as_old();
    let mut meta = Meta {
        uid: id(lenient(h.uid(), &old.uid)?)?,
        gid: id(lenient(h.gid(), &old.gid)?)?,
        mode: u32::try_from(lenient(h.mode().map(u64::from), &old.mode)? & 0o7777).unwrap_or(0),
        mtime: Timespec {
            tv_sec: i64::try_from(lenient(h.mtime(), &old.mtime)?).unwrap_or(i64::MAX),
            tv_nsec: 0,
        },
        xattrs: Vec::new(),
    };
    let Some(pax) = entry.pax_extensions()? else {
        return Ok(meta);
    };
    for ext in pax {
        let ext = ext?;
        let Ok(key) = ext.key() else { continue };
        let value = ext.value_bytes();
        match key {
            "uid" => meta.uid = id(parse_num(value)?)?,
            "gid" => meta.gid = id(parse_num(value)?)?,
            "mtime" => meta.mtime = parse_time(value)?,
            _ => {
                if let Some(name) = key.strip_prefix(PAX_XATTR)
                    && !OVERLAY_XATTR_PREFIXES.iter().any(|p| name.starts_with(p))
                {
                    meta.xattrs.push((name.to_owned(), value.to_vec()));
                }
            }
        }
    }
    Ok(meta)
}

/// Blank numeric fields read as zero, as Go's tar reader (and so Docker)
/// accepts them.
fn lenient(parsed: io::Result<u64>, field: &[u8]) -> io::Result<u64> {
    match parsed {
        Err(_) if field.iter().all(|&b| b == 0 || b == b' ') => Ok(0),
        other => other,
    }
}

fn id(v: u64) -> io::Result<u32> {
    u32::try_from(v).map_err(|_| invalid("uid/gid out of range"))
}

fn parse_num(v: &[u8]) -> io::Result<u64> {
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid("malformed numeric PAX record"))
}

/// PAX times are decimal seconds with an optional fraction.
fn parse_time(v: &[u8]) -> io::Result<Timespec> {
    let bad = || invalid("malformed PAX time");
    let s = std::str::from_utf8(v).map_err(|_| bad())?;
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let tv_sec: i64 = secs.parse().map_err(|_| bad())?;
    let mut tv_nsec: i64 = 0;
    for i in 0..9 {
        let digit = frac.as_bytes().get(i).map_or(0, |b| b - b'0');
        tv_nsec = tv_nsec * 10 + i64::from(digit);
    }
    // "-1.5" means 1.5 s before the epoch: -2 s plus 0.5 s.
    if secs.starts_with('-') && tv_nsec > 0 {
        return Ok(Timespec {
            tv_sec: tv_sec.checked_sub(1).ok_or_else(bad)?,
            tv_nsec: 1_000_000_000 - tv_nsec,
        });
    }
    Ok(Timespec { tv_sec, tv_nsec })
}

fn times(mtime: Timespec) -> Timestamps {
    Timestamps {
        last_access: mtime,
        last_modification: mtime,
    }
}

fn invalid(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

fn entry_err(path: &str, source: io::Error) -> Error {
    Error::Entry {
        path: path.to_owned(),
        source,
    }
}

fn unsafe_entry(path: &str, reason: &'static str) -> Error {
    Error::Unsafe {
        path: path.to_owned(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_paths() {
        let c = |p: &str| {
            clean(p.as_bytes())
                .map(|v| v.join(&b'/'))
                .map(|v| String::from_utf8(v).unwrap())
        };
        assert_eq!(c("./a/b/").as_deref(), Some("a/b"));
        assert_eq!(c("/abs/path").as_deref(), Some("abs/path"));
        assert_eq!(c("a/../b").as_deref(), Some("b"));
        assert_eq!(c("./").as_deref(), Some(""));
        assert_eq!(c("../../etc/x"), None);
        assert_eq!(c("a/../../x"), None);
    }

    #[test]
    fn pax_times() {
        let t = parse_time(b"1700000000.25").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (1_700_000_000, 250_000_000));
        let t = parse_time(b"-1.5").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (-2, 500_000_000));
        let t = parse_time(b"42").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (42, 0));
        let t = parse_time(b"-0.25").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (-1, 750_000_000));
        assert!(parse_time(b"x").is_err());
        assert!(parse_time(b"1.-5").is_err());
        assert!(parse_time(b"-9223372036854775808.5").is_err());
    }
}
