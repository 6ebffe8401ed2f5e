//! Layers written by `write_layer` and unpacked again, in both whiteout modes.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::{build_diff_dir, set_xattr, snapshot};
use kiln_layer::{
    Compression, LayerOptions, UnpackOptions, WhiteoutMode, unpack_layer, write_layer,
};

fn write(src: &Path, compression: Compression) -> (Vec<u8>, kiln_layer::LayerDescriptor) {
    let opts = LayerOptions {
        compression,
        all_xattrs: true,
        ..Default::default()
    };
    let mut blob = Vec::new();
    let desc = write_layer(src, &mut blob, &opts).unwrap();
    (blob, desc)
}

fn overlay() -> UnpackOptions {
    UnpackOptions {
        whiteouts: WhiteoutMode::Overlay,
    }
}

#[test]
fn overlay_mode_round_trip_recreates_the_upper_dir() {
    for compression in [Compression::Gzip, Compression::Zstd, Compression::None] {
        let src = tempfile::tempdir().unwrap();
        build_diff_dir(src.path());
        let (blob, desc) = write(src.path(), compression);
        let dest = tempfile::tempdir().unwrap();
        let stats = unpack_layer(&blob[..], dest.path(), &overlay()).unwrap();
        assert_eq!(stats.compression, compression);
        assert_eq!(stats.diff_id, desc.diff_id);
        assert_eq!(stats.uncompressed_size, desc.uncompressed_size);
        assert_eq!(stats.whiteouts, 2);
        let (mut want, mut got) = (snapshot(src.path()), snapshot(dest.path()));
        // The layer does not describe its root directory.
        want.remove("");
        got.remove("");
        // Whiteouts carry no metadata in the tar: only their kind matters.
        want.remove("gone");
        let gone = got.remove("gone").unwrap_or_default();
        assert!(
            gone.starts_with("mode=20000 uid=0 gid=0") && gone.contains("rdev=0 "),
            "{gone}"
        );
        for (path, desc) in &want {
            assert_eq!(got.get(path), Some(desc), "{compression:?}: {path}");
        }
        assert_eq!(want.len(), got.len(), "{compression:?}: extra entries");
        let (a, b) = (
            fs::metadata(dest.path().join("hl/a")).unwrap(),
            fs::metadata(dest.path().join("hl/b")).unwrap(),
        );
        assert_eq!(a.ino(), b.ino(), "hardlink restored");
    }
}

/// Lower layer content, then a layer that deletes, hides and adds.
#[test]
fn apply_mode_honours_whiteouts() {
    let rootfs = tempfile::tempdir().unwrap();
    let r = |p: &str| rootfs.path().join(p);
    fs::create_dir_all(r("opq/sub")).unwrap();
    fs::write(r("opq/old"), b"lower").unwrap();
    fs::write(r("opq/sub/deep"), b"lower").unwrap();
    fs::create_dir_all(r("gone/inner")).unwrap();
    fs::write(r("gone/inner/f"), b"lower").unwrap();
    fs::write(r("stays"), b"lower").unwrap();

    let upper = tempfile::tempdir().unwrap();
    let u = |p: &str| upper.path().join(p);
    common::mknod(&u("gone"), rustix::fs::FileType::CharacterDevice, 0, 0);
    fs::create_dir(u("opq")).unwrap();
    set_xattr(&u("opq"), "trusted.overlay.opaque", b"y");
    fs::write(u("opq/new"), b"upper").unwrap();
    fs::write(u("added"), b"upper").unwrap();
    let (blob, _) = write(upper.path(), Compression::Gzip);

    let stats = unpack_layer(&blob[..], rootfs.path(), &UnpackOptions::default()).unwrap();
    assert_eq!(stats.whiteouts, 2);
    assert!(!r("gone").exists(), "whiteout removed a whole tree");
    assert!(
        !r("opq/old").exists() && !r("opq/sub").exists(),
        "opaque dir hid lower entries"
    );
    assert_eq!(fs::read(r("opq/new")).unwrap(), b"upper");
    assert_eq!(fs::read(r("added")).unwrap(), b"upper");
    assert_eq!(fs::read(r("stays")).unwrap(), b"lower");
    assert!(rustix::fs::lgetxattr(r("opq"), "trusted.overlay.opaque", &mut [0u8; 8][..]).is_err());
}

#[test]
fn later_entries_replace_earlier_ones() {
    let rootfs = tempfile::tempdir().unwrap();
    fs::create_dir_all(rootfs.path().join("x/inner")).unwrap();
    fs::write(rootfs.path().join("y"), b"file").unwrap();
    let upper = tempfile::tempdir().unwrap();
    fs::write(upper.path().join("x"), b"now a file").unwrap();
    fs::create_dir(upper.path().join("y")).unwrap();
    let (blob, _) = write(upper.path(), Compression::None);
    unpack_layer(&blob[..], rootfs.path(), &UnpackOptions::default()).unwrap();
    assert_eq!(fs::read(rootfs.path().join("x")).unwrap(), b"now a file");
    assert!(rootfs.path().join("y").is_dir());
}

#[test]
fn truncated_stream_is_a_read_error() {
    let src = tempfile::tempdir().unwrap();
    build_diff_dir(src.path());
    let (blob, _) = write(src.path(), Compression::Gzip);
    let dest = tempfile::tempdir().unwrap();
    let err = unpack_layer(&blob[..blob.len() / 2], dest.path(), &overlay()).unwrap_err();
    assert!(matches!(err, kiln_layer::Error::Read(_)), "{err}");
}
