//! Tar header encoding that matches Go's `archive/tar` writer in PAX mode,
//! which BuildKit and containerd use, so the same tree yields the same
//! uncompressed bytes (and so the same diff_id) as `docker build`.
//!
//! Go picks plain USTAR whenever an entry fits it (splitting long names into
//! prefix/name) and falls back to a PAX extended header otherwise. The `tar`
//! crate's setters would pick GNU extensions instead, so this module fills the
//! name, prefix, link name and checksum fields of [`tar::Header`] directly.

use std::collections::BTreeMap;
use std::io::{self, Write};

use tar::{EntryType, Header};

/// Size of a tar block.
pub(crate) const BLOCK: usize = 512;

/// Largest value of an 8-byte octal field (7 digits and a NUL).
const MAX_OCTAL_8: u64 = 0o7_777_777;
/// Largest value of a 12-byte octal field (11 digits and a NUL).
const MAX_OCTAL_12: u64 = 0o77_777_777_777;
const NAME_LEN: usize = 100;
const PREFIX_LEN: usize = 155;
/// Key prefix of extended attributes in PAX records.
pub(crate) const PAX_XATTR: &str = "SCHILY.xattr.";

/// Everything that goes into one tar entry's header(s).
#[derive(Debug, Clone)]
pub(crate) struct EntryHeader {
    pub name: Vec<u8>,
    pub kind: EntryType,
    pub link: Vec<u8>,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    pub mtime: i64,
    pub dev: (u32, u32),
    /// Extended attributes, emitted as `SCHILY.xattr.*` PAX records.
    pub xattrs: Vec<(String, Vec<u8>)>,
}

impl EntryHeader {
    /// An entry with zeroed metadata, as used for whiteout markers.
    pub fn marker(name: Vec<u8>) -> Self {
        Self {
            name,
            kind: EntryType::Regular,
            link: Vec::new(),
            mode: 0,
            uid: 0,
            gid: 0,
            size: 0,
            mtime: 0,
            dev: (0, 0),
            xattrs: Vec::new(),
        }
    }

    /// Writes the header block(s) of this entry (not its data).
    pub fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        let mut pax = BTreeMap::new();
        let mut ustar_ok = true;
        let split = split_ustar_name(&self.name);
        if !self.name.is_ascii() || self.name.len() > NAME_LEN {
            pax.insert("path".to_owned(), self.name.clone());
            ustar_ok &= split.is_some();
        }
        if !self.link.is_ascii() || self.link.len() > NAME_LEN {
            pax.insert("linkpath".to_owned(), self.link.clone());
            ustar_ok = false;
        }
        let uid = numeric(&mut pax, &mut ustar_ok, "uid", self.uid, MAX_OCTAL_8);
        let gid = numeric(&mut pax, &mut ustar_ok, "gid", self.gid, MAX_OCTAL_8);
        let size = numeric(&mut pax, &mut ustar_ok, "size", self.size, MAX_OCTAL_12);
        let mtime = u64::try_from(self.mtime).unwrap_or(u64::MAX);
        if mtime > MAX_OCTAL_12 {
            pax.insert("mtime".to_owned(), self.mtime.to_string().into_bytes());
            ustar_ok = false;
        }
        for (key, value) in &self.xattrs {
            pax.insert(format!("{PAX_XATTR}{key}"), value.clone());
            ustar_ok = false;
        }
        let mut h = Header::new_ustar();
        h.set_entry_type(self.kind);
        h.set_mode(self.mode);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_size(size);
        h.set_mtime(if mtime > MAX_OCTAL_12 { 0 } else { mtime });
        h.set_device_major(self.dev.0)?;
        h.set_device_minor(self.dev.1)?;
        match split {
            Some((prefix, name)) if ustar_ok => {
                set_names(&mut h, name, &self.link);
                if let Some(ustar) = h.as_ustar_mut() {
                    copy_truncated(&mut ustar.prefix, prefix);
                }
            }
            _ if ustar_ok => set_names(&mut h, &self.name, &self.link),
            _ => {
                write_pax(out, &self.name, &pax)?;
                set_names(&mut h, &ascii_only(&self.name), &ascii_only(&self.link));
            }
        }
        write_block(out, h)
    }
}

/// Returns the value for the header field, recording a PAX record (and
/// ruling out plain USTAR) when it does not fit.
fn numeric(
    pax: &mut BTreeMap<String, Vec<u8>>,
    ustar_ok: &mut bool,
    key: &str,
    value: u64,
    max: u64,
) -> u64 {
    if value <= max {
        return value;
    }
    pax.insert(key.to_owned(), value.to_string().into_bytes());
    *ustar_ok = false;
    0
}

/// Go's `splitUSTARPath`: a long ASCII name split at a `/` into a prefix of
/// at most 155 bytes and a non-empty name of at most 100 bytes.
fn split_ustar_name(name: &[u8]) -> Option<(&[u8], &[u8])> {
    if name.len() <= NAME_LEN || !name.is_ascii() {
        return None;
    }
    let mut limit = name.len().min(PREFIX_LEN + 1);
    if limit == name.len() && name.ends_with(b"/") {
        limit -= 1;
    }
    let i = name[..limit].iter().rposition(|&b| b == b'/')?;
    let suffix = &name[i + 1..];
    if i == 0 || suffix.is_empty() || suffix.len() > NAME_LEN || i > PREFIX_LEN {
        return None;
    }
    Some((&name[..i], suffix))
}

fn set_names(h: &mut Header, name: &[u8], link: &[u8]) {
    let old = h.as_old_mut();
    copy_truncated(&mut old.name, name);
    copy_truncated(&mut old.linkname, link);
}

/// Copies as much of `src` as fits; unused bytes stay NUL.
fn copy_truncated(dst: &mut [u8], src: &[u8]) {
    let n = src.len().min(dst.len());
    dst[..n].copy_from_slice(&src[..n]);
}

/// Go keeps only the ASCII bytes of names in the fallback header fields.
fn ascii_only(s: &[u8]) -> Vec<u8> {
    s.iter()
        .copied()
        .filter(|&b| b.is_ascii() && b != 0)
        .collect()
}

/// Writes a PAX extended header (typeflag `x`) holding `records`, named like
/// Go names it: `<dir>/PaxHeaders.0/<base>`.
fn write_pax(
    out: &mut impl Write,
    name: &[u8],
    records: &BTreeMap<String, Vec<u8>>,
) -> io::Result<()> {
    let mut data = Vec::new();
    for (key, value) in records {
        data.extend_from_slice(&pax_record(key, value));
    }
    let mut h = Header::new_ustar();
    h.set_entry_type(EntryType::XHeader);
    h.set_mode(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_size(data.len() as u64);
    h.set_mtime(0);
    // Go leaves the device fields of extended headers all-NUL.
    if let Some(ustar) = h.as_ustar_mut() {
        ustar.dev_major = [0; 8];
        ustar.dev_minor = [0; 8];
    }
    let pax_name = ascii_only(&pax_header_name(name));
    let trimmed = pax_name.strip_suffix(b"/").unwrap_or(&pax_name);
    set_names(&mut h, trimmed, b"");
    write_block(out, h)?;
    out.write_all(&data)?;
    pad(out, data.len() as u64)
}

/// `path.Join(dir, "PaxHeaders.0", base)` for `path.Split(name)`.
fn pax_header_name(name: &[u8]) -> Vec<u8> {
    let cut = name.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
    let (dir, base) = name.split_at(cut);
    let mut out = dir.strip_suffix(b"/").unwrap_or(dir).to_vec();
    if !out.is_empty() {
        out.push(b'/');
    }
    out.extend_from_slice(b"PaxHeaders.0");
    if !base.is_empty() {
        out.push(b'/');
        out.extend_from_slice(base);
    }
    out
}

/// One `"<len> <key>=<value>\n"` record; `<len>` counts the whole record.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3;
    let mut len = body + body.to_string().len();
    if len.to_string().len() + body != len {
        len = body + len.to_string().len();
    }
    let mut rec = format!("{len} {key}=").into_bytes();
    rec.extend_from_slice(value);
    rec.push(b'\n');
    rec
}

/// Writes a header block with a Go-style checksum: six octal digits, NUL,
/// space (the `tar` crate writes seven digits and a NUL).
fn write_block(out: &mut impl Write, mut h: Header) -> io::Result<()> {
    let bytes = h.as_mut_bytes();
    bytes[148..156].fill(b' ');
    let sum: u32 = bytes.iter().map(|&b| u32::from(b)).sum();
    let field = format!("{sum:06o}\0 ");
    bytes[148..156].copy_from_slice(field.as_bytes());
    out.write_all(h.as_bytes())
}

/// Zero padding that rounds an entry's data up to a whole block.
pub(crate) fn pad(out: &mut impl Write, len: u64) -> io::Result<()> {
    let rem = (len % BLOCK as u64) as usize;
    if rem == 0 {
        return Ok(());
    }
    out.write_all(&[0u8; BLOCK][..BLOCK - rem])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        assert_eq!(pax_record("path", b"abc"), b"12 path=abc\n");
        // A 99-byte body plus "101" is 102 long: the length gains a digit.
        let rec = pax_record("path", &[b'x'; 92]);
        assert_eq!(rec.len(), 102);
        assert!(rec.starts_with(b"102 path="));
    }

    #[test]
    fn ustar_split_follows_go() {
        let name = format!("{}/{}", "d".repeat(120), "f".repeat(50));
        let (prefix, rest) = split_ustar_name(name.as_bytes()).unwrap();
        assert_eq!((prefix.len(), rest.len()), (120, 50));
        assert!(split_ustar_name("short".as_bytes()).is_none());
        assert!(split_ustar_name("x".repeat(150).as_bytes()).is_none());
        let dir = format!("{}/{}/", "d".repeat(120), "e".repeat(20));
        let (prefix, rest) = split_ustar_name(dir.as_bytes()).unwrap();
        assert_eq!(
            (prefix.len(), rest),
            (120, format!("{}/", "e".repeat(20)).as_bytes())
        );
    }

    #[test]
    fn pax_header_names() {
        assert_eq!(pax_header_name(b"foo"), b"PaxHeaders.0/foo");
        assert_eq!(pax_header_name(b"a/b/c"), b"a/b/PaxHeaders.0/c");
        assert_eq!(pax_header_name(b"a/b/"), b"a/b/PaxHeaders.0");
    }

    #[test]
    fn checksum_is_go_style() {
        let mut out = Vec::new();
        EntryHeader::marker(b"f".to_vec())
            .write_to(&mut out)
            .unwrap();
        assert_eq!(out.len(), BLOCK);
        assert_eq!(&out[154..156], b"\0 ");
        let parsed = tar::Header::from_byte_slice(&out);
        assert_eq!(parsed.cksum().unwrap(), {
            let mut b = out.clone();
            b[148..156].fill(b' ');
            b.iter().map(|&x| u32::from(x)).sum::<u32>()
        });
        assert_eq!(&out[257..265], b"ustar\x0000");
    }
}
