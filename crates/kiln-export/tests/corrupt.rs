//! Damaged and hostile archives fail with typed errors and leave nothing
//! half-committed: no manifest, only complete verified blobs.

mod common;

use common::*;
use kiln_content::{Digest, sha256_digest};
use kiln_export::{Error, ExportImage, export_docker_archive, export_oci_archive, import_archive};
use serde_json::json;

/// A docker-archive export of the small test image, and the image.
fn exported() -> (Vec<u8>, StoredImage) {
    let src = temp_store();
    let image = store_image(&src.store, &small_layers());
    let mut tar = Vec::new();
    let images = [ExportImage {
        manifest_digest: image.manifest.clone(),
        tags: vec!["kiln-test/corrupt:1".into()],
    }];
    export_docker_archive(&src.store, &images, &mut tar).unwrap();
    (tar, image)
}

/// Imports `tar` into a fresh store, expects failure, and checks the store
/// holds no manifest and only intact blobs.
fn import_fails(tar: &[u8], image: Option<&StoredImage>) -> Error {
    let dst = temp_store();
    let err = import_archive(&dst.store, tar).expect_err("import of a damaged archive succeeded");
    if let Some(image) = image {
        assert!(
            !dst.store.contains(&image.manifest),
            "manifest committed by a failed import"
        );
    }
    assert_store_consistent(&dst);
    err
}

/// Rewrites the members of an archive through `edit` (None drops a member).
fn rewrite(tar: &[u8], edit: impl Fn(&str, Vec<u8>) -> Option<Vec<u8>>) -> Vec<u8> {
    use std::io::Read;
    let mut out = tar::Builder::new(Vec::new());
    for entry in tar::Archive::new(tar).entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut header = entry.header().clone();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        if let Some(data) = edit(&path, data) {
            header.set_size(data.len() as u64);
            out.append_data(&mut header, &path, &data[..]).unwrap();
        }
    }
    out.into_inner().unwrap()
}

/// Replaces the content of member `target`.
fn replace_member(tar: &[u8], target: &str, content: &[u8]) -> Vec<u8> {
    rewrite(tar, |p, d| {
        Some(if p == target { content.to_vec() } else { d })
    })
}

/// The content of a layer does not match what the image says it is.
fn assert_content_mismatch(err: &Error) {
    assert!(
        matches!(
            err,
            Error::DiffIdMismatch { .. } | Error::DigestMismatch { .. }
        ),
        "{err}"
    );
}

fn layer_path(image: &StoredImage, i: usize) -> String {
    format!("blobs/sha256/{}", image.layer_blobs[i].digest())
}

#[test]
fn truncated_in_the_middle_of_a_member() {
    let (tar, image) = exported();
    let err = import_fails(&tar[..tar.len() / 2], Some(&image));
    assert!(matches!(err, Error::Truncated(_)), "{err}");
}

#[test]
fn truncated_at_a_member_boundary() {
    let (tar, image) = exported();
    // Drop the two zero blocks of the end-of-archive marker.
    let err = import_fails(&tar[..tar.len() - 1024], Some(&image));
    assert!(matches!(err, Error::Truncated(_)), "{err}");
}

#[test]
fn truncated_gzip_stream() {
    let (tar, image) = exported();
    let gz = gzip(&tar);
    let err = import_fails(&gz[..gz.len() - 100], Some(&image));
    assert!(matches!(err, Error::Truncated(_)), "{err}");
}

#[test]
fn empty_and_garbage_input() {
    assert!(matches!(import_fails(b"", None), Error::Truncated(_)));
    let err = import_fails(&[0x42; 4096], None);
    assert!(matches!(err, Error::Read { .. }), "{err}");
}

#[test]
fn missing_layer_blob() {
    let (tar, image) = exported();
    let gone = layer_path(&image, 1);
    let tar = rewrite(&tar, |p, d| (p != gone).then_some(d));
    let err = import_fails(&tar, Some(&image));
    assert!(
        matches!(&err, Error::MissingMember { path } if *path == gone),
        "{err}"
    );
}

#[test]
fn layer_blob_with_wrong_content() {
    let (tar, image) = exported();
    let target = layer_path(&image, 0);
    // A valid gzip tar, but not the one the manifest names.
    let other = gzip(&layer_tar(&[Item::File("evil", b"x", 0o644)]));
    let tar = replace_member(&tar, &target, &other);
    assert_content_mismatch(&import_fails(&tar, Some(&image)));
}

#[test]
fn flipped_byte_in_a_gzip_layer() {
    let (tar, image) = exported();
    let target = layer_path(&image, 1);
    let tar = rewrite(&tar, |p, mut d| {
        if p == target {
            let mid = d.len() / 2;
            d[mid] ^= 0xff;
        }
        Some(d)
    });
    let err = import_fails(&tar, Some(&image));
    assert!(
        matches!(
            err,
            Error::CorruptLayer { .. }
                | Error::DiffIdMismatch { .. }
                | Error::DigestMismatch { .. }
        ),
        "{err}"
    );
}

#[test]
fn manifest_blob_with_wrong_digest() {
    let (tar, image) = exported();
    let target = format!("blobs/sha256/{}", image.manifest.digest());
    let tar = rewrite(&tar, |p, d| {
        Some(if p == target {
            [&d[..], b" "].concat()
        } else {
            d
        })
    });
    let err = import_fails(&tar, Some(&image));
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
}

#[test]
fn diff_id_mismatch_in_a_docker_save_archive() {
    let layers = small_layers();
    let mut config: serde_json::Value = serde_json::from_slice(&config_json(&layers)).unwrap();
    config["rootfs"]["diff_ids"][1] = json!(sha256_digest(b"something else").to_string());
    let config = serde_json::to_vec(&config).unwrap();
    let tar = docker_legacy_archive(&layers, &config, &["lab/bad:1"]);
    let dst = temp_store();
    let err = import_archive(&dst.store, &tar[..]).unwrap_err();
    assert!(
        matches!(&err, Error::DiffIdMismatch { index: 1, .. }),
        "{err}"
    );
    // The verified base layer may be kept for GC; the bad one and the config are not.
    assert!(!dst.store.contains(&sha256_digest(&config)));
    assert_store_consistent(&dst);
}

#[test]
fn layer_count_mismatch() {
    let layers = small_layers();
    let config = config_json(&layers[..1]);
    let tar = docker_legacy_archive(&layers, &config, &["lab/bad:1"]);
    let err = import_fails(&tar, None);
    assert!(
        matches!(
            err,
            Error::LayerCountMismatch {
                layers: 2,
                diff_ids: 1,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn bad_json() {
    let (tar, image) = exported();
    let broken = replace_member(&tar, "manifest.json", b"[{\"Config\":");
    assert!(matches!(
        import_fails(&broken, Some(&image)),
        Error::Json { .. }
    ));
    let broken = replace_member(&tar, "index.json", b"{nope");
    assert!(matches!(
        import_fails(&broken, Some(&image)),
        Error::Json { .. }
    ));
}

#[test]
fn not_an_image_archive() {
    let tar = archive(&[("hello.txt", b"hi")]);
    assert!(matches!(import_fails(&tar, None), Error::UnknownFormat));
}

/// A one-member archive (without end marker) whose name is patched in
/// after the fact: the tar crate refuses to write unsafe names.
fn raw_member(name: &str) -> Vec<u8> {
    let placeholder = "x".repeat(name.len());
    let mut evil = archive(&[(&placeholder, b"boom")]);
    evil[..name.len()].copy_from_slice(name.as_bytes());
    let mut header = tar::Header::from_byte_slice(&evil[..512]).clone();
    header.set_cksum();
    evil[..512].copy_from_slice(header.as_bytes());
    evil.truncate(evil.len() - 1024);
    evil
}

#[test]
fn path_traversal_in_member_names() {
    let (tar, _) = exported();
    for name in ["../evil", "a/../../evil", "/etc/evil"] {
        let joined = [&raw_member(name)[..], &tar[..]].concat();
        let err = import_fails(&joined, None);
        assert!(
            matches!(&err, Error::PathTraversal { path } if path == name),
            "{name}: {err}"
        );
    }
    // The same archive with a harmless extra member imports fine.
    let joined = [&raw_member("notes/evil"), &tar[..]].concat();
    assert!(import_archive(&temp_store().store, &joined[..]).is_ok());
}

#[test]
fn symlink_escaping_the_archive() {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "a/layer.tar", "../../etc/shadow")
        .unwrap();
    let tar = b.into_inner().unwrap();
    assert!(matches!(
        import_fails(&tar, None),
        Error::PathTraversal { .. }
    ));
}

#[test]
fn export_of_an_image_with_a_missing_blob_writes_nothing() {
    let src = temp_store();
    let image = store_image(&src.store, &small_layers());
    src.store.delete(&image.layer_blobs[1]).unwrap();
    let images = [ExportImage {
        manifest_digest: image.manifest.clone(),
        tags: vec![],
    }];
    let mut out = Vec::new();
    let err = export_oci_archive(&src.store, &images, &mut out).unwrap_err();
    assert!(
        matches!(&err, Error::MissingBlob { digest, .. } if *digest == image.layer_blobs[1]),
        "{err}"
    );
    assert!(out.is_empty());
}

#[test]
fn export_rejects_bad_references_and_unknown_manifests() {
    let src = temp_store();
    let image = store_image(&src.store, &small_layers());
    let bad_tag = [ExportImage {
        manifest_digest: image.manifest.clone(),
        tags: vec!["Not A Reference".into()],
    }];
    let err = export_docker_archive(&src.store, &bad_tag, Vec::new()).unwrap_err();
    assert!(matches!(err, Error::Reference { .. }), "{err}");

    let missing: Digest = sha256_digest(b"no such manifest");
    let unknown = [ExportImage {
        manifest_digest: missing,
        tags: vec![],
    }];
    let err = export_docker_archive(&src.store, &unknown, Vec::new()).unwrap_err();
    assert!(
        matches!(err, Error::Content(kiln_content::Error::NotFound { .. })),
        "{err}"
    );
}

#[test]
fn truncated_anywhere() {
    let (tar, image) = exported();
    // Up to the first zero block of the end marker, any cut is detected.
    for cut in (0..tar.len() - 512).step_by(509) {
        let err = import_fails(&tar[..cut], Some(&image));
        assert!(matches!(err, Error::Truncated(_)), "cut at {cut}: {err}");
    }
}

#[test]
fn flipped_bytes_anywhere_never_panic_nor_commit_a_bad_manifest() {
    let (tar, image) = exported();
    for pos in (0..tar.len()).step_by(397) {
        let mut bad = tar.clone();
        bad[pos] ^= 0x5a;
        let dst = temp_store();
        // Flips in padding or unused header fields are harmless; anything
        // that imports must be the original image.
        if let Ok(imported) = import_archive(&dst.store, &bad[..]) {
            assert!(
                imported.iter().all(|i| i.manifest_digest == image.manifest),
                "flip at {pos}"
            );
        }
        assert_store_consistent(&dst);
    }
}

#[test]
fn corrupt_zstd_layer() {
    let layers = small_layers();
    let zst = zstd::encode_all(&layers[1][..], 3).unwrap();
    let cut = zst[..zst.len() - 3].to_vec();
    let blobs = vec![(layers[0].clone(), TAR), (cut, ZSTD)];
    let (tar, _) = oci_layout_archive(&blobs, &layers, None);
    let err = import_fails(&tar, None);
    assert!(matches!(&err, Error::CorruptLayer { .. }), "{err}");
}

#[test]
fn uncompressed_layer_not_matching_its_descriptor() {
    let layers = small_layers();
    let (tar, _) = oci_layout_archive(
        &[(layers[0].clone(), TAR), (layers[1].clone(), TAR)],
        &layers,
        None,
    );
    // Swap the content of the second layer for a same-sized other tar.
    let target = format!("blobs/sha256/{}", sha256_digest(&layers[1]).digest());
    let mut other = layers[1].clone();
    let at = other.iter().position(|b| *b == b'e').unwrap();
    other[at] = b'E';
    let tar = replace_member(&tar, &target, &other);
    assert_content_mismatch(&import_fails(&tar, None));
}

#[test]
fn docker_archive_blob_not_matching_its_name() {
    let layers = small_layers();
    let blobs: Vec<_> = layers.iter().map(|l| (l.clone(), TAR)).collect();
    let (tar, _) = oci_layout_archive(&blobs, &layers, Some("lab/named:1"));
    let config = format!(
        "blobs/sha256/{}",
        sha256_digest(&config_json(&layers)).digest()
    );
    // Without index.json only manifest.json describes the image.
    let tar = rewrite(&tar, |p, d| match p {
        "index.json" => None,
        p if p == config => Some([&d[..], b"\n"].concat()),
        _ => Some(d),
    });
    let err = import_fails(&tar, None);
    assert!(
        matches!(&err, Error::DigestMismatch { what, .. } if *what == config),
        "{err}"
    );
}
