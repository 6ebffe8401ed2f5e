//! `content_size`: a layer's size as `docker images` counts it (overlay2's
//! `directory.Size` of the unpacked layer).

use std::io::Write;

use kiln_layer::content_size;
use tar::{EntryType, Header};

fn entry(b: &mut tar::Builder<Vec<u8>>, name: &str, kind: EntryType, link: &str, data: &[u8]) {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(0o755);
    h.set_size(data.len() as u64);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    if link.is_empty() {
        b.append_data(&mut h, name, data).unwrap();
    } else {
        b.append_link(&mut h, name, link).unwrap();
    }
}

/// Mirrors the second layer of the image verified against docker 20.10
/// (`RUN rm /f /etc/group && echo hello > /h && ln /h /h2 && ln -s /some/target /sl && mkdir /d`),
/// for which docker reported 18 bytes, plus a plain file and a long symlink.
fn layer() -> (Vec<u8>, u64) {
    let mut b = tar::Builder::new(Vec::new());
    entry(&mut b, "d/", EntryType::Directory, "", b"");
    entry(&mut b, "etc/", EntryType::Directory, "", b"");
    entry(&mut b, "etc/.wh.group", EntryType::Regular, "", b"");
    entry(&mut b, ".wh.f", EntryType::Regular, "", b"");
    entry(&mut b, "h", EntryType::Regular, "", b"hello\n");
    entry(&mut b, "h2", EntryType::Link, "h", b"");
    entry(&mut b, "sl", EntryType::Symlink, "/some/target", b"");
    entry(&mut b, "usr/bin/.wh..wh..opq", EntryType::Regular, "", b"");
    entry(&mut b, "data.bin", EntryType::Regular, "", &[7u8; 5000]);
    let long = "t".repeat(300);
    entry(&mut b, "long", EntryType::Symlink, &long, b"");
    entry(&mut b, "fifo", EntryType::Fifo, "", b"");
    let tar = b.into_inner().unwrap();
    (tar, 6 + 12 + 5000 + 300)
}

#[test]
fn counts_files_symlink_targets_and_each_inode_once() {
    let (tar, want) = layer();
    assert_eq!(content_size(tar.as_slice()).unwrap(), want);
}

#[test]
fn detects_compression() {
    let (tar, want) = layer();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    assert_eq!(content_size(gz.as_slice()).unwrap(), want);
    let zst = zstd::encode_all(tar.as_slice(), 3).unwrap();
    assert_eq!(content_size(zst.as_slice()).unwrap(), want);
}

#[test]
fn a_repeated_entry_counts_once() {
    let mut b = tar::Builder::new(Vec::new());
    entry(&mut b, "./a", EntryType::Regular, "", &[1u8; 100]);
    entry(&mut b, "a", EntryType::Regular, "", &[1u8; 10]);
    let tar = b.into_inner().unwrap();
    assert_eq!(content_size(tar.as_slice()).unwrap(), 10);
}

#[test]
fn empty_layer_is_zero() {
    let tar = tar::Builder::new(Vec::new()).into_inner().unwrap();
    assert_eq!(content_size(tar.as_slice()).unwrap(), 0);
}
