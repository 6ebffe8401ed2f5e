//! Building a layer tar from an overlayfs upper directory (or any staging
//! directory), in one streaming pass that also yields both digests.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, Metadata, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use kiln_content::Sha256Writer;
use rustix::fs::OFlags;
use tar::EntryType;

use crate::compress::Encoder;
use crate::header::{BLOCK, EntryHeader, pad};
use crate::{Error, LayerDescriptor, LayerOptions, OPAQUE_WHITEOUT, Result, WHITEOUT_PREFIX};

/// The only extended attribute BuildKit records in layers.
const CAPABILITY_XATTR: &str = "security.capability";
/// Xattrs that mark a directory opaque in an overlay upper dir (privileged
/// and `userxattr` mounts respectively).
const OPAQUE_XATTRS: [&str; 2] = ["trusted.overlay.opaque", "user.overlay.opaque"];
/// Overlay's private xattr namespaces, which must never leak into layers.
const OVERLAY_XATTR_PREFIXES: [&str; 2] = ["trusted.overlay.", "user.overlay."];
const COPY_BUF: usize = 64 * 1024;
const OUT_BUF: usize = 128 * 1024;

/// Writes the layer tar of `diff_dir` to `out`, compressed per `opts`.
///
/// Entries come depth-first with siblings in byte order (what BuildKit's
/// walk of the upper dir produces), names are relative without `./`, and
/// directories end in `/`. Overlay whiteouts (0/0 char devices) become
/// `.wh.<name>` entries and opaque directories get a `.wh..wh..opq` entry
/// right after their own. Sockets are skipped, as BuildKit does.
pub fn write_layer(
    diff_dir: &Path,
    out: impl Write,
    opts: &LayerOptions,
) -> Result<LayerDescriptor> {
    // Tar headers come in 512-byte pieces: batch them before `out`.
    let blob = Sha256Writer::new(BufWriter::with_capacity(OUT_BUF, out));
    let encoder =
        Encoder::new(blob, opts.compression, opts.compression_level).map_err(Error::Write)?;
    let mut tar = Sha256Writer::new(encoder);
    let mut walker = Walker {
        root: diff_dir,
        opts,
        links: HashMap::new(),
        buf: vec![0; COPY_BUF],
    };
    walker.walk(&mut tar)?;
    // End-of-archive marker: two zero blocks.
    tar.write_all(&[0; 2 * BLOCK]).map_err(Error::Write)?;
    let (encoder, diff_id, uncompressed_size) = tar.finish();
    let blob = encoder.finish().map_err(Error::Write)?;
    let (buffered, digest, size) = blob.finish();
    buffered
        .into_inner()
        .map_err(|e| Error::Write(e.into_error()))?;
    Ok(LayerDescriptor {
        digest,
        diff_id,
        size,
        uncompressed_size,
        compression: opts.compression,
    })
}

struct Walker<'a> {
    root: &'a Path,
    opts: &'a LayerOptions,
    /// First entry name of each multiply-linked inode, keyed by (dev, ino).
    links: HashMap<(u64, u64), Vec<u8>>,
    buf: Vec<u8>,
}

type Children = std::vec::IntoIter<Vec<u8>>;

impl Walker<'_> {
    /// Depth-first walk with an explicit stack, so deep trees cannot
    /// overflow the call stack.
    fn walk(&mut self, tar: &mut impl Write) -> Result<()> {
        let mut stack: Vec<(Vec<u8>, Children)> = vec![(Vec::new(), self.children(&[])?)];
        loop {
            let next = match stack.last_mut() {
                None => return Ok(()),
                Some((dir, names)) => names.next().map(|name| join(dir, &name)),
            };
            match next {
                None => drop(stack.pop()),
                Some(rel) => {
                    if let Some(children) = self.entry(tar, &rel)? {
                        stack.push((rel, children));
                    }
                }
            }
        }
    }

    /// Names in directory `rel`, sorted bytewise.
    fn children(&self, rel: &[u8]) -> Result<Children> {
        let path = self.path(rel);
        let src = |source| Error::Source {
            path: path.clone(),
            source,
        };
        let mut names = Vec::new();
        for entry in fs::read_dir(&path).map_err(src)? {
            names.push(entry.map_err(src)?.file_name().as_bytes().to_vec());
        }
        names.sort_unstable();
        Ok(names.into_iter())
    }

    /// Emits the entry for `rel`; returns its children if it is a directory.
    fn entry(&mut self, tar: &mut impl Write, rel: &[u8]) -> Result<Option<Children>> {
        let path = self.path(rel);
        let meta = fs::symlink_metadata(&path).map_err(|source| Error::Source {
            path: path.clone(),
            source,
        })?;
        let ft = meta.file_type();
        if ft.is_socket() {
            return Ok(None);
        }
        if ft.is_char_device() && meta.rdev() == 0 {
            let marker = EntryHeader::marker(whiteout_name(rel));
            marker.write_to(tar).map_err(Error::Write)?;
            return Ok(None);
        }
        let mut header = self.header(rel, &path, &meta)?;
        if ft.is_dir() {
            return self.directory(tar, rel, &path, header).map(Some);
        }
        if meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            if let Some(first) = self.links.get(&key) {
                header.kind = EntryType::Link;
                header.link = first.clone();
                header.size = 0;
                return header.write_to(tar).map_err(Error::Write).map(|()| None);
            }
            self.links.insert(key, rel.to_vec());
        }
        header.write_to(tar).map_err(Error::Write)?;
        if header.kind == EntryType::Regular {
            self.copy_contents(tar, &path, header.size)?;
        }
        Ok(None)
    }

    fn directory(
        &mut self,
        tar: &mut impl Write,
        rel: &[u8],
        path: &Path,
        mut header: EntryHeader,
    ) -> Result<Children> {
        header.name.push(b'/');
        header.write_to(tar).map_err(Error::Write)?;
        if is_opaque(path)? {
            let marker = EntryHeader::marker(join(rel, OPAQUE_WHITEOUT.as_bytes()));
            marker.write_to(tar).map_err(Error::Write)?;
        }
        self.children(rel)
    }

    /// The header of a non-whiteout entry, from its `lstat` metadata.
    fn header(&self, rel: &[u8], path: &Path, meta: &Metadata) -> Result<EntryHeader> {
        let ft = meta.file_type();
        let (kind, dev) = if ft.is_dir() {
            (EntryType::Directory, (0, 0))
        } else if ft.is_symlink() {
            (EntryType::Symlink, (0, 0))
        } else if ft.is_char_device() {
            (EntryType::Char, split_dev(meta.rdev()))
        } else if ft.is_block_device() {
            (EntryType::Block, split_dev(meta.rdev()))
        } else if ft.is_fifo() {
            (EntryType::Fifo, (0, 0))
        } else {
            (EntryType::Regular, (0, 0))
        };
        let link = if ft.is_symlink() {
            let target = fs::read_link(path).map_err(|source| Error::Source {
                path: path.to_path_buf(),
                source,
            })?;
            target.as_os_str().as_bytes().to_vec()
        } else {
            Vec::new()
        };
        Ok(EntryHeader {
            name: rel.to_vec(),
            kind,
            link,
            mode: meta.mode() & 0o7777,
            uid: u64::from(meta.uid()),
            gid: u64::from(meta.gid()),
            size: if kind == EntryType::Regular {
                meta.len()
            } else {
                0
            },
            mtime: self.clamp(meta.mtime()),
            dev,
            xattrs: self.xattrs(path)?,
        })
    }

    fn clamp(&self, mtime: i64) -> i64 {
        match self.opts.source_date_epoch {
            Some(epoch) => mtime.min(epoch),
            None => mtime,
        }
    }

    fn xattrs(&self, path: &Path) -> Result<Vec<(String, Vec<u8>)>> {
        let names = if self.opts.all_xattrs {
            list_xattrs(path)?
        } else {
            vec![CAPABILITY_XATTR.to_owned()]
        };
        let mut out = Vec::new();
        for name in names {
            if OVERLAY_XATTR_PREFIXES.iter().any(|p| name.starts_with(p)) {
                continue;
            }
            if let Some(value) = get_xattr(path, &name)? {
                out.push((name, value));
            }
        }
        Ok(out)
    }

    /// Streams exactly `size` bytes of the file into the tar, plus padding.
    fn copy_contents(&mut self, tar: &mut impl Write, path: &Path, size: u64) -> Result<()> {
        let src = |source| Error::Source {
            path: path.to_path_buf(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(OFlags::NOFOLLOW.bits() as i32)
            .open(path)
            .map_err(src)?;
        let mut reader = file.take(size);
        let mut copied = 0u64;
        loop {
            let n = match reader.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(src(e)),
            };
            tar.write_all(&self.buf[..n]).map_err(Error::Write)?;
            copied += n as u64;
        }
        if copied != size {
            return Err(Error::Changed {
                path: path.to_path_buf(),
            });
        }
        pad(tar, size).map_err(Error::Write)
    }

    fn path(&self, rel: &[u8]) -> PathBuf {
        self.root.join(OsStr::from_bytes(rel))
    }
}

fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut out = dir.to_vec();
    if !out.is_empty() {
        out.push(b'/');
    }
    out.extend_from_slice(name);
    out
}

/// `dir/name` becomes `dir/.wh.name`.
fn whiteout_name(rel: &[u8]) -> Vec<u8> {
    let cut = rel.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
    let (dir, name) = rel.split_at(cut);
    let mut out = dir.to_vec();
    out.extend_from_slice(WHITEOUT_PREFIX.as_bytes());
    out.extend_from_slice(name);
    out
}

fn split_dev(rdev: u64) -> (u32, u32) {
    (rustix::fs::major(rdev), rustix::fs::minor(rdev))
}

fn is_opaque(path: &Path) -> Result<bool> {
    for name in OPAQUE_XATTRS {
        if get_xattr(path, name)?.as_deref() == Some(b"y") {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Names of all xattrs of `path` (not following a final symlink).
fn list_xattrs(path: &Path) -> Result<Vec<String>> {
    let raw = read_sized(
        path,
        || rustix::fs::llistxattr_query(path),
        |buf| rustix::fs::llistxattr(path, buf),
    )?;
    let names = raw.split(|&b| b == 0).filter(|n| !n.is_empty());
    Ok(names
        .filter_map(|n| std::str::from_utf8(n).ok().map(str::to_owned))
        .collect())
}

/// One xattr of `path` (not following a final symlink); `None` if unset or
/// unsupported by the filesystem.
fn get_xattr(path: &Path, name: &str) -> Result<Option<Vec<u8>>> {
    let value = read_sized(
        path,
        || rustix::fs::lgetxattr_query(path, name),
        |buf| rustix::fs::lgetxattr(path, name, buf),
    );
    match value {
        Ok(v) => Ok(Some(v)),
        Err(Error::Source { source, .. }) if is_absent_xattr(&source) => Ok(None),
        Err(e) => Err(e),
    }
}

/// ENODATA: not set; ENOTSUP: the filesystem has no xattrs at all.
fn is_absent_xattr(e: &io::Error) -> bool {
    let code = e.raw_os_error();
    code == Some(rustix::io::Errno::NODATA.raw_os_error())
        || code == Some(rustix::io::Errno::NOTSUP.raw_os_error())
}

/// Runs a size-query-then-read xattr call, retrying if the value grew
/// between the two calls.
fn read_sized(
    path: &Path,
    query: impl Fn() -> rustix::io::Result<usize>,
    mut read: impl FnMut(&mut [u8]) -> rustix::io::Result<usize>,
) -> Result<Vec<u8>> {
    let src = |e: rustix::io::Errno| Error::Source {
        path: path.to_path_buf(),
        source: e.into(),
    };
    loop {
        let len = query().map_err(src)?;
        let mut buf = vec![0u8; len];
        match read(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(rustix::io::Errno::RANGE) => continue,
            Err(e) => return Err(src(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whiteout_names() {
        assert_eq!(whiteout_name(b"a/b/c"), b"a/b/.wh.c");
        assert_eq!(whiteout_name(b"top"), b".wh.top");
    }

    #[test]
    fn walk_order_is_depth_first_bytewise() {
        let dir = tempfile::tempdir().unwrap();
        for p in ["a/b", "a-c", "B"] {
            fs::create_dir_all(dir.path().join(p)).unwrap();
        }
        fs::File::create(dir.path().join("a/z")).unwrap();
        let mut out = Vec::new();
        let opts = LayerOptions {
            compression: crate::Compression::None,
            ..Default::default()
        };
        write_layer(dir.path(), &mut out, &opts).unwrap();
        let mut ar = tar::Archive::new(&out[..]);
        let names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| String::from_utf8(e.unwrap().path_bytes().to_vec()).unwrap())
            .collect();
        assert_eq!(names, ["B/", "a/", "a/b/", "a/z", "a-c/"]);
    }
}
