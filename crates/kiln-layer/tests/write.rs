//! Layer tars written from a diff directory, read back with the `tar` crate.

mod common;

use std::collections::BTreeMap;
use std::io::Read;

use common::{CAP_NET_BIND, MTIME, build_diff_dir, long_names};
use kiln_content::sha256_digest;
use kiln_layer::{Compression, LayerOptions, diff_id_of, write_layer};
use tar::EntryType;

/// sha256 of the tar that Go 1.19's `archive/tar`, driven the way containerd's
/// `ChangeWriter` drives it (names, PAX format, no unames, capability xattr,
/// epoch-dated whiteouts), writes for the `build_diff_dir` tree; obtained
/// with a small Go program over a copy of that tree.
const GO_DIFF_ID: &str = "sha256:28245dc65be8878127f0796df33758b9b818c7baf08324f97394cc49d255a0ef";

/// One tar entry, as read back.
#[derive(Debug)]
struct Read_ {
    kind: EntryType,
    link: Option<String>,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    dev: (u32, u32),
    uname: Vec<u8>,
    data: Vec<u8>,
    pax: BTreeMap<String, Vec<u8>>,
}

fn layer(opts: &LayerOptions) -> (tempfile::TempDir, Vec<u8>, kiln_layer::LayerDescriptor) {
    let dir = tempfile::tempdir().unwrap();
    build_diff_dir(dir.path());
    let mut out = Vec::new();
    let desc = write_layer(dir.path(), &mut out, opts).unwrap();
    (dir, out, desc)
}

fn plain() -> LayerOptions {
    LayerOptions {
        compression: Compression::None,
        ..Default::default()
    }
}

fn entries(tar_bytes: &[u8]) -> Vec<(String, Read_)> {
    let mut ar = tar::Archive::new(tar_bytes);
    let mut out = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = String::from_utf8(e.path_bytes().to_vec()).unwrap();
        let h = e.header().clone();
        let mut pax = BTreeMap::new();
        if let Some(exts) = e.pax_extensions().unwrap() {
            for ext in exts {
                let ext = ext.unwrap();
                pax.insert(ext.key().unwrap().to_owned(), ext.value_bytes().to_vec());
            }
        }
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        let entry = Read_ {
            kind: h.entry_type(),
            link: e
                .link_name_bytes()
                .map(|l| String::from_utf8(l.to_vec()).unwrap()),
            mode: h.mode().unwrap(),
            uid: h.uid().unwrap(),
            gid: h.gid().unwrap(),
            mtime: h.mtime().unwrap(),
            dev: (
                h.device_major().unwrap().unwrap_or(0),
                h.device_minor().unwrap().unwrap_or(0),
            ),
            uname: h.username_bytes().unwrap_or_default().to_vec(),
            data,
            pax,
        };
        out.push((name, entry));
    }
    out
}

#[test]
fn entries_are_sorted_and_converted() {
    let (_dir, out, desc) = layer(&plain());
    let got = entries(&out);
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    let (splittable, pax) = long_names();
    let long_dir = format!("long/{}/", "d".repeat(110));
    let expected = [
        "abs-link",
        "bin-tool",
        "dev/",
        "dev/big-minor",
        "dev/loop9",
        "dev/null",
        "dev/pipe",
        "etc/",
        "etc/app/",
        "etc/app/config",
        "etc/app/empty",
        "far-future",
        ".wh.gone",
        "hl/",
        "hl/a",
        "hl/b",
        "hl/rel-link",
        "long/",
        &long_dir,
        &splittable,
        &pax,
        "long-target",
        "opq/",
        "opq/.wh..wh..opq",
        "opq/kept",
        "owned",
        "ünïcode-ß",
    ];
    assert_eq!(names, expected);
    assert_eq!(desc.digest, desc.diff_id, "uncompressed: blob is the tar");
    assert_eq!(desc.digest, sha256_digest(&out));
    assert_eq!(desc.size, out.len() as u64);
    assert_eq!(desc.uncompressed_size, out.len() as u64);
}

#[test]
fn entry_metadata() {
    let (_dir, out, _) = layer(&plain());
    let got: BTreeMap<String, Read_> = entries(&out).into_iter().collect();
    for (name, e) in &got {
        assert!(e.uname.is_empty(), "{name} has a uname");
        assert!(!name.starts_with("./") && !name.starts_with('/'), "{name}");
        assert_eq!(
            name.ends_with('/'),
            e.kind == EntryType::Directory,
            "{name}"
        );
        assert!(
            !e.pax.keys().any(|k| k.contains("overlay")),
            "{name} leaks overlay xattrs: {:?}",
            e.pax
        );
    }
    let tool = &got["bin-tool"];
    assert_eq!(
        (tool.kind, tool.mode, tool.data.len()),
        (EntryType::Regular, 0o4755, 3000)
    );
    assert_eq!(tool.mtime, MTIME as u64);
    assert_eq!(
        tool.pax
            .get("SCHILY.xattr.security.capability")
            .map(Vec::as_slice),
        Some(&CAP_NET_BIND[..])
    );
    assert!(
        !tool.pax.contains_key("SCHILY.xattr.user.note"),
        "BuildKit keeps only capabilities"
    );
    assert_eq!((got["owned"].uid, got["owned"].gid), (1234, 5678));
    assert_eq!(got["hl/a"].data, b"shared inode");
    assert_eq!(got["hl/b"].kind, EntryType::Link);
    assert_eq!(got["hl/b"].link.as_deref(), Some("hl/a"));
    assert_eq!(
        got["hl/rel-link"].link.as_deref(),
        Some("../etc/app/config")
    );
    assert_eq!(got["abs-link"].link.as_deref(), Some("/absolute/target"));
    assert_eq!(
        (got["dev/null"].kind, got["dev/null"].dev),
        (EntryType::Char, (1, 3))
    );
    assert_eq!(
        (got["dev/loop9"].kind, got["dev/loop9"].dev),
        (EntryType::Block, (7, 9))
    );
    assert_eq!(got["dev/pipe"].kind, EntryType::Fifo);
    assert_eq!(got["dev/big-minor"].dev, (300, 70_000));
    assert_eq!(got["long-target"].link, Some("t".repeat(150)));
    assert_eq!(
        got["long-target"].pax.get("linkpath").map(Vec::len),
        Some(150)
    );
    assert_eq!(
        got["far-future"].pax.get("mtime").map(Vec::as_slice),
        Some(&b"10000000000"[..])
    );
    assert_eq!(
        got["ünïcode-ß"].pax.get("path").map(Vec::as_slice),
        Some("ünïcode-ß".as_bytes())
    );
    for marker in [".wh.gone", "opq/.wh..wh..opq"] {
        let m = &got[marker];
        assert_eq!(
            (m.kind, m.mode, m.uid, m.mtime),
            (EntryType::Regular, 0, 0, 0),
            "{marker}"
        );
        assert!(m.data.is_empty());
    }
    let (splittable, pax) = long_names();
    assert_eq!(got[&splittable].data, splittable.as_bytes());
    assert!(got[&splittable].pax.is_empty(), "fits USTAR prefix/name");
    assert_eq!(
        got[&pax].pax.get("path").map(Vec::as_slice),
        Some(pax.as_bytes())
    );
}

#[test]
fn all_xattrs_option_keeps_user_xattrs() {
    let opts = LayerOptions {
        all_xattrs: true,
        ..plain()
    };
    let (_dir, out, _) = layer(&opts);
    let got: BTreeMap<String, Read_> = entries(&out).into_iter().collect();
    let tool = &got["bin-tool"];
    assert_eq!(
        tool.pax.get("SCHILY.xattr.user.note").map(Vec::as_slice),
        Some(&b"hello"[..])
    );
    assert!(got["opq/"].pax.is_empty(), "overlay xattrs never recorded");
}

#[test]
fn source_date_epoch_clamps_mtimes() {
    let opts = LayerOptions {
        source_date_epoch: Some(1_000),
        ..plain()
    };
    let (_dir, out, _) = layer(&opts);
    for (name, e) in entries(&out) {
        assert!(e.mtime <= 1_000, "{name} mtime {}", e.mtime);
    }
}

#[test]
fn output_is_deterministic_and_digests_are_consistent() {
    for compression in [Compression::Gzip, Compression::Zstd, Compression::None] {
        let opts = LayerOptions {
            compression,
            ..Default::default()
        };
        let (_d1, out1, desc1) = layer(&opts);
        let (_d2, out2, desc2) = layer(&opts);
        assert_eq!(desc1, desc2, "{compression:?}");
        assert_eq!(out1, out2);
        assert_eq!(desc1.digest, sha256_digest(&out1));
        assert_eq!(desc1.size, out1.len() as u64);
        let (diff_id, size) = diff_id_of(&out1[..]).unwrap();
        assert_eq!(
            (diff_id, size),
            (desc1.diff_id.clone(), desc1.uncompressed_size)
        );
        assert_eq!(desc1.compression, compression);
    }
    let (_d, _, gz) = layer(&LayerOptions::default());
    let (_d, _, zst) = layer(&LayerOptions {
        compression: Compression::Zstd,
        ..Default::default()
    });
    let (_d, _, raw) = layer(&plain());
    assert_eq!(gz.diff_id, raw.diff_id, "same tar whatever the compression");
    assert_eq!(zst.diff_id, raw.diff_id);
    assert_ne!(gz.digest, zst.digest);
}

/// Same tree, same uncompressed bytes as BuildKit: the diff_id matches.
#[test]
fn tar_bytes_match_go_archive_tar() {
    let (_dir, _, desc) = layer(&plain());
    assert_eq!(desc.diff_id.to_string(), GO_DIFF_ID);
}

#[test]
fn media_types() {
    assert_eq!(
        Compression::Gzip.media_type(),
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    assert_eq!(
        Compression::Zstd.media_type(),
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    assert_eq!(
        Compression::None.media_type(),
        "application/vnd.oci.image.layer.v1.tar"
    );
}

#[test]
fn missing_diff_dir_is_a_typed_error() {
    let err = write_layer(
        std::path::Path::new("/nonexistent/kiln-diff"),
        Vec::new(),
        &plain(),
    )
    .unwrap_err();
    assert!(matches!(err, kiln_layer::Error::Source { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/kiln-diff"));
}
