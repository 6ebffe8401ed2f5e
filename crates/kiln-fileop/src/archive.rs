//! ADD's local archive extraction. A source is an archive when it is a
//! regular file whose content (not name) decompresses (gzip, bzip2, xz,
//! zstd or none) to a stream with a valid first tar header, as BuildKit
//! checks it. Entries keep the archive's owners and modes (`--chown` and
//! `--chmod` do not apply to them), `.wh.` files are plain files, and every
//! path is resolved inside the extraction directory, so neither `../` names
//! nor links met on the way can write outside it.

use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::os::unix::fs::{PermissionsExt, lchown, symlink};
use std::path::{Path, PathBuf};

use filetime::FileTime;
use tar::{Archive, EntryType, Header};

use crate::dest::{clean_parts, mkdir_all};
use crate::error::{Error, IoContext, Result};
use crate::owner::Owner;
use crate::tree::{CopyStats, create_new, replaceable};

/// Opens `path` decompressed by sniffing its first bytes.
fn open_stream(path: &Path) -> Result<Box<dyn Read>> {
    let mut file = File::open(path).at("opening", path)?;
    let mut magic = [0u8; 6];
    let n = read_up_to(&mut file, &mut magic).at("reading", path)?;
    let head = io::Cursor::new(magic[..n].to_vec());
    let stream = BufReader::new(head.chain(file));
    Ok(match &magic[..n] {
        [0x1f, 0x8b, ..] => Box::new(flate2::read::MultiGzDecoder::new(stream)),
        [b'B', b'Z', b'h', ..] => Box::new(bzip2::read::MultiBzDecoder::new(stream)),
        [0xfd, b'7', b'z', b'X', b'Z', 0] => {
            Box::new(xz2::read::XzDecoder::new_multi_decoder(stream))
        }
        [0x28, 0xb5, 0x2f, 0xfd, ..] => {
            Box::new(zstd::stream::read::Decoder::with_buffer(stream).at("reading", path)?)
        }
        _ => Box::new(stream),
    })
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Whether `path` (a resolved source) is an archive ADD unpacks.
pub(crate) fn is_archive(path: &Path) -> bool {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return false;
    };
    if !meta.is_file() {
        return false;
    }
    let Ok(stream) = open_stream(path) else {
        return false;
    };
    let mut archive = Archive::new(stream);
    matches!(archive.entries().map(|mut e| e.next()), Ok(Some(Ok(_))))
}

/// Extracts `archive` into the in-root directory `dest` (created 0755 with
/// `dir_owner` when missing, like BuildKit's unpack).
pub(crate) fn extract(
    archive: &Path,
    dest_root: &Path,
    dest: &str,
    dir_owner: Owner,
) -> Result<CopyStats> {
    let dir = mkdir_all(dest_root, dest, dir_owner)?;
    let mut tar = Archive::new(open_stream(archive)?);
    let mut x = Extractor {
        archive,
        dir,
        stats: CopyStats::default(),
        dir_times: Vec::new(),
    };
    for entry in tar.entries().at("reading", archive)? {
        x.entry(entry.at("reading", archive)?)?;
    }
    x.finish()
}

struct Extractor<'a> {
    archive: &'a Path,
    dir: PathBuf,
    stats: CopyStats,
    dir_times: Vec<(PathBuf, FileTime)>,
}

impl Extractor<'_> {
    fn entry(&mut self, mut entry: tar::Entry<'_, Box<dyn Read>>) -> Result<()> {
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Some(target) = self.place(&name)? else {
            return Ok(());
        };
        let header = entry.header().clone();
        let kind = header.entry_type();
        if !(kind.is_dir() && is_real_dir(&target)) {
            remove_existing(&target)?;
        }
        match kind {
            EntryType::Directory => self.mkdir(&target)?,
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let mut f = create_new(&target)?;
                self.stats.bytes += io::copy(&mut entry, &mut f).at("writing", &target)?;
                self.stats.files += 1;
            }
            EntryType::Symlink => {
                let link = entry
                    .link_name()
                    .at("reading", self.archive)?
                    .unwrap_or_default();
                symlink(&link, &target).at("symlink", &target)?;
                self.stats.symlinks += 1;
            }
            EntryType::Link => return self.hardlink(&entry, &target),
            EntryType::Char | EntryType::Block | EntryType::Fifo => mknod(&header, &target)?,
            _ => return Ok(()),
        }
        self.set_meta(&mut entry, &header, &target)
    }

    /// The host path for an entry name inside the extraction directory, its
    /// missing parents created (0755, root); `None` for the directory itself.
    fn place(&self, name: &str) -> Result<Option<PathBuf>> {
        if escapes(name) {
            return Err(Error::Breakout {
                archive: self.archive.to_path_buf(),
                name: name.to_owned(),
            });
        }
        let mut parts = clean_parts(name);
        let Some(base) = parts.pop() else {
            return Ok(None);
        };
        self.no_dangling_parent(&parts, name)?;
        let parent = mkdir_all(&self.dir, &parts.join("/"), Owner::ROOT)?;
        Ok(Some(parent.join(base)))
    }

    /// Fails when a parent component is a symlink whose in-root target is missing; missing
    /// plain components are fine (they are created).
    fn no_dangling_parent(&self, parts: &[String], name: &str) -> Result<()> {
        let mut cur = self.dir.clone();
        for (i, part) in parts.iter().enumerate() {
            let next = cur.join(part);
            match fs::symlink_metadata(&next) {
                Ok(m) if m.file_type().is_symlink() => {
                    cur = kiln_executor::resolve_in_root(&self.dir, &parts[..=i].join("/"))?;
                    if fs::symlink_metadata(&cur).is_err() {
                        return Err(Error::DanglingParent {
                            archive: self.archive.to_path_buf(),
                            name: name.to_owned(),
                        });
                    }
                }
                Ok(_) => cur = next,
                Err(_) => return Ok(()),
            }
        }
        Ok(())
    }

    fn mkdir(&mut self, target: &Path) -> Result<()> {
        if !is_real_dir(target) {
            fs::create_dir(target).at("mkdir", target)?;
        }
        self.stats.dirs += 1;
        Ok(())
    }

    fn hardlink(&mut self, entry: &tar::Entry<'_, Box<dyn Read>>, target: &Path) -> Result<()> {
        let link = entry.link_name_bytes().unwrap_or_default();
        let link = String::from_utf8_lossy(&link).into_owned();
        let Some(source) = self.place(&link)? else {
            return Ok(());
        };
        fs::hard_link(&source, target).at("linking", target)?;
        self.stats.hardlinks += 1;
        Ok(())
    }

    /// Owner and mode from the header, xattrs from PAX records, mtime.
    fn set_meta(
        &mut self,
        entry: &mut tar::Entry<'_, Box<dyn Read>>,
        header: &Header,
        target: &Path,
    ) -> Result<()> {
        let old = header.as_old();
        let uid = lenient(header.uid(), &old.uid).at("reading", self.archive)? as u32;
        let gid = lenient(header.gid(), &old.gid).at("reading", self.archive)? as u32;
        lchown(target, Some(uid), Some(gid)).at("chown", target)?;
        let is_link = header.entry_type().is_symlink();
        if !is_link {
            let mode =
                lenient(header.mode().map(u64::from), &old.mode).at("reading", self.archive)?;
            let mode = (mode & 0o7777) as u32;
            fs::set_permissions(target, fs::Permissions::from_mode(mode)).at("chmod", target)?;
        }
        set_pax_xattrs(entry, target);
        let mtime = FileTime::from_unix_time(header.mtime().unwrap_or(0) as i64, 0);
        if header.entry_type().is_dir() {
            self.dir_times.push((target.to_path_buf(), mtime));
            return Ok(());
        }
        filetime::set_symlink_file_times(target, mtime, mtime).at("setting times", target)
    }

    fn finish(self) -> Result<CopyStats> {
        for (path, mtime) in self.dir_times.iter().rev() {
            filetime::set_symlink_file_times(path, *mtime, *mtime).at("setting times", path)?;
        }
        Ok(self.stats)
    }
}

/// A numeric header field; a blank one (hand-made archives) reads as zero, as Go's tar reader
/// (and so BuildKit's ADD) reads it.
fn lenient(parsed: io::Result<u64>, field: &[u8]) -> io::Result<u64> {
    match parsed {
        Err(_) if field.iter().all(|&b| b == 0 || b == b' ') => Ok(0),
        other => other,
    }
}

/// A directory itself, not a link to one.
fn is_real_dir(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
}

/// Whether a relative entry name climbs above its root (Go's breakout check).
fn escapes(name: &str) -> bool {
    let mut depth: i64 = 0;
    for part in name.trim_start_matches('/').split('/') {
        match part {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => depth += 1,
        }
    }
    false
}

/// Clears the way for an entry: anything there goes, unless both are dirs.
fn remove_existing(target: &Path) -> Result<()> {
    match fs::symlink_metadata(target) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(target).at("removing", target),
        _ => replaceable(target),
    }
}

fn mknod(header: &Header, target: &Path) -> Result<()> {
    use rustix::fs::{FileType, Mode, makedev};
    let kind = match header.entry_type() {
        EntryType::Char => FileType::CharacterDevice,
        EntryType::Block => FileType::BlockDevice,
        _ => FileType::Fifo,
    };
    let major = header.device_major().ok().flatten().unwrap_or(0);
    let minor = header.device_minor().ok().flatten().unwrap_or(0);
    let mode = Mode::from_raw_mode(header.mode().unwrap_or(0o644));
    rustix::fs::mknodat(rustix::fs::CWD, target, kind, mode, makedev(major, minor))
        .map_err(io::Error::from)
        .at("mknod", target)
}

/// Best-effort `SCHILY.xattr.*` PAX records, as BuildKit's untar does.
fn set_pax_xattrs(entry: &mut tar::Entry<'_, Box<dyn Read>>, target: &Path) {
    let Ok(Some(exts)) = entry.pax_extensions() else {
        return;
    };
    for ext in exts.flatten() {
        let Some(name) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") else {
            continue;
        };
        if let Ok(name) = std::ffi::CString::new(name) {
            let _ = rustix::fs::lsetxattr(
                target,
                &name,
                ext.value_bytes(),
                rustix::fs::XattrFlags::empty(),
            );
        }
    }
}
