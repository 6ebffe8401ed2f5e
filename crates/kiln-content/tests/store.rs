//! Behaviour of the content store on a real filesystem.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use kiln_content::{ContentStore, Digest, Error, sha256_digest};

fn store() -> (tempfile::TempDir, ContentStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = ContentStore::open(dir.path().join("content")).unwrap();
    (dir, store)
}

fn ingest_files(store: &ContentStore) -> Vec<std::path::PathBuf> {
    fs::read_dir(store.root().join("ingest"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

#[test]
fn open_creates_oci_layout() {
    let (_dir, store) = store();
    let layout = fs::read_to_string(store.root().join("oci-layout")).unwrap();
    assert_eq!(layout, r#"{"imageLayoutVersion":"1.0.0"}"#);
    assert!(store.root().join("blobs/sha256").is_dir());
    assert!(store.root().join("ingest").is_dir());
    // Reopening an existing store works and keeps content.
    let d = store.write_bytes(b"kept").unwrap();
    let again = ContentStore::open(store.root()).unwrap();
    assert!(again.contains(&d));
}

#[test]
fn bytes_round_trip() {
    let (_dir, store) = store();
    let d = store.write_bytes(b"{\"a\":1}").unwrap();
    assert_eq!(d, sha256_digest(b"{\"a\":1}"));
    assert_eq!(
        d.to_string(),
        "sha256:015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862"
    );
    assert!(store.contains(&d));
    assert_eq!(store.size(&d).unwrap(), 7);
    assert_eq!(store.read_bytes(&d, 1024).unwrap(), b"{\"a\":1}");
    let path = store.blob_path(&d);
    assert_eq!(path, store.root().join("blobs/sha256").join(d.digest()));
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o444);
    let mut s = String::new();
    store.open_blob(&d).unwrap().read_to_string(&mut s).unwrap();
    assert_eq!(s, "{\"a\":1}");
    assert_eq!(store.list().unwrap(), vec![d.clone()]);
    assert!(ingest_files(&store).is_empty());
}

#[test]
fn read_bytes_is_bounded() {
    let (_dir, store) = store();
    let d = store.write_bytes(&[7u8; 100]).unwrap();
    assert!(matches!(
        store.read_bytes(&d, 99),
        Err(Error::TooLarge {
            size: 100,
            max: 99,
            ..
        })
    ));
}

#[test]
fn writer_streams_and_commits() {
    let (_dir, store) = store();
    let mut w = store.writer().unwrap();
    for _ in 0..10 {
        w.write_all(b"0123456789").unwrap();
    }
    let expected = sha256_digest(&b"0123456789".repeat(10));
    let (d, n) = w.commit(Some(&expected)).unwrap();
    assert_eq!((d, n), (expected, 100));
}

#[test]
fn missing_blob_is_typed_not_found() {
    let (_dir, store) = store();
    let d = sha256_digest(b"absent");
    assert!(!store.contains(&d));
    let err = store.open_blob(&d).unwrap_err();
    assert!(err.to_string().contains(d.digest()), "{err}");
    assert!(matches!(err, Error::NotFound { digest } if digest == d));
    assert!(matches!(store.size(&d), Err(Error::NotFound { .. })));
    assert!(matches!(store.delete(&d), Err(Error::NotFound { .. })));
}

#[test]
fn mismatch_leaves_nothing_behind() {
    let (_dir, store) = store();
    let wrong = sha256_digest(b"something else");
    let err = store.ingest(&b"payload"[..], Some(&wrong)).unwrap_err();
    match err {
        Error::DigestMismatch { expected, actual } => {
            assert_eq!(expected, wrong);
            assert_eq!(actual, sha256_digest(b"payload"));
        }
        other => panic!("unexpected error {other}"),
    }
    assert!(store.list().unwrap().is_empty());
    assert!(ingest_files(&store).is_empty());
}

#[test]
fn other_algorithms_rejected() {
    let (_dir, store) = store();
    let d: Digest = format!("sha512:{}", "a".repeat(128)).parse().unwrap();
    assert!(!store.contains(&d));
    let err = store.ingest(&b"x"[..], Some(&d)).unwrap_err();
    assert!(matches!(err, Error::UnsupportedAlgorithm { .. }), "{err}");
    assert!(err.to_string().contains("sha512"));
    assert!(matches!(
        store.open_blob(&d),
        Err(Error::UnsupportedAlgorithm { .. })
    ));
    assert!(ingest_files(&store).is_empty());
}

#[test]
fn dropped_writer_removes_temp() {
    let (_dir, store) = store();
    let mut w = store.writer().unwrap();
    w.write_all(b"partial").unwrap();
    assert_eq!(ingest_files(&store).len(), 1);
    drop(w);
    assert!(ingest_files(&store).is_empty());
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn concurrent_writers_of_same_blob_both_succeed() {
    let (_dir, store) = store();
    let data: Arc<Vec<u8>> = Arc::new((0..2_000_000u32).map(|i| (i % 251) as u8).collect());
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (store, data) = (store.clone(), Arc::clone(&data));
            std::thread::spawn(move || {
                let mut w = store.writer().unwrap();
                for chunk in data.chunks(4096) {
                    w.write_all(chunk).unwrap();
                }
                w.commit(None).unwrap()
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let expected = sha256_digest(&data);
    for (d, n) in &results {
        assert_eq!(d, &expected);
        assert_eq!(*n, data.len() as u64);
    }
    assert_eq!(store.list().unwrap(), vec![expected.clone()]);
    store.verify(&expected).unwrap();
    assert!(ingest_files(&store).is_empty());
}

#[test]
fn clean_ingest_removes_crash_leftovers_only() {
    let (_dir, store) = store();
    // A crashed writer leaves an unlocked temp file behind.
    let ingest = store.root().join("ingest");
    fs::write(ingest.join("blob-crashed"), vec![1u8; 1000]).unwrap();
    let mut live = store.writer().unwrap();
    live.write_all(b"in flight").unwrap();
    live.flush().unwrap();
    assert_eq!(store.clean_ingest().unwrap(), 1000);
    assert!(!ingest.join("blob-crashed").exists());
    // The live writer's temp file survived and still commits.
    assert_eq!(ingest_files(&store).len(), 1);
    let (d, _) = live.commit(None).unwrap();
    assert_eq!(store.read_bytes(&d, 100).unwrap(), b"in flight");
    assert_eq!(store.clean_ingest().unwrap(), 0);
}

#[test]
fn verify_detects_corruption() {
    let (_dir, store) = store();
    let d = store.write_bytes(b"pristine content").unwrap();
    store.verify(&d).unwrap();
    corrupt(&store.blob_path(&d));
    let err = store.verify(&d).unwrap_err();
    assert!(
        matches!(&err, Error::DigestMismatch { expected, .. } if expected == &d),
        "{err}"
    );
    assert!(matches!(
        store.read_bytes(&d, 100),
        Err(Error::DigestMismatch { .. })
    ));
}

fn corrupt(path: &Path) {
    fs::set_permissions(path, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(path, b"tampered content").unwrap();
}

#[test]
fn rewriting_existing_blob_is_a_no_op() {
    let (_dir, store) = store();
    let d1 = store.write_bytes(b"same").unwrap();
    let d2 = store.write_bytes(b"same").unwrap();
    assert_eq!(d1, d2);
    assert_eq!(store.list().unwrap().len(), 1);
}

#[test]
fn delete_and_list() {
    let (_dir, store) = store();
    let a = store.write_bytes(b"a").unwrap();
    let b = store.write_bytes(b"b").unwrap();
    // Stray files in blobs/sha256 are not reported as blobs.
    fs::write(store.root().join("blobs/sha256/not-a-digest"), b"x").unwrap();
    let mut listed = store.list().unwrap();
    listed.sort_by(|x, y| x.digest().cmp(y.digest()));
    let mut want = vec![a.clone(), b.clone()];
    want.sort_by(|x, y| x.digest().cmp(y.digest()));
    assert_eq!(listed, want);
    store.delete(&a).unwrap();
    assert!(!store.contains(&a));
    assert_eq!(store.list().unwrap(), vec![b]);
}

/// A tiny tmpfs mounted for the test's lifetime (needs root, like the builder).
struct TinyFs(tempfile::TempDir);

impl Drop for TinyFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.0.path())
            .status();
    }
}

#[test]
fn full_disk_is_reported_as_no_space() {
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success(), "mounting a tmpfs needs root");
    let fs_guard = TinyFs(dir);
    let store = ContentStore::open(fs_guard.0.path()).unwrap();
    let err = store.ingest(&vec![0u8; 4 << 20][..], None).unwrap_err();
    assert!(matches!(err, Error::NoSpace { .. }), "{err}");
    assert!(err.to_string().contains("no space left"), "{err}");
    assert!(store.list().unwrap().is_empty());
    assert!(ingest_files(&store).is_empty());
}
