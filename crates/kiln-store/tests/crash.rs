//! Crash safety and concurrency: writers SIGKILLed at random points leave a
//! store that opens and passes `check`; concurrent writers all succeed.

mod common;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use common::{build, layer, put};
use kiln_store::{ImageFilter, Store};

/// Store root for the helper process; unset when the helper runs as a test.
const ROOT_ENV: &str = "KILN_STORE_TEST_CHILD_ROOT";
/// Number of images the helper writes.
const COUNT_ENV: &str = "KILN_STORE_TEST_CHILD_COUNT";

/// One round of everything a writer does: blobs, put with a tag, a shared
/// layer, unpacked dirs, removals and GC.
fn write_round(store: &Store, tag: &str, i: usize) {
    // As a build does: content written before the image is recorded is
    // leased, so another process's GC leaves it alone.
    let lease = store.lease(Duration::from_secs(600)).expect("lease");
    let shared = layer(store, "shared");
    lease
        .protect_blob(&shared.digest)
        .expect("protect reused blob");
    let own = layer(store, &format!("{tag}-{i}"));
    let built = build(
        &format!("{tag}-{i}"),
        &[shared, own.clone()],
        &[("round", "x")],
    );
    store
        .put_built(&built, common::refs(&[&format!("{tag}:{i}")]), None)
        .expect("put image");
    let src = store.tmp_dir().expect("tmp").keep();
    std::fs::write(src.join("f"), b"data").expect("write unpacked file");
    store
        .add_unpacked(&own.diff_id, &src, 4)
        .expect("add unpacked");
    lease.release().expect("release lease");
    if i % 3 == 2 {
        store
            .remove_image(&format!("{tag}:{}", i - 1), false)
            .expect("rmi");
    }
    if i % 5 == 4 {
        store.gc().expect("gc");
    }
}

/// The writer process the other tests spawn and kill. Run directly, it
/// writes a few rounds into a temporary store and checks them.
#[test]
#[ignore = "helper process spawned by the crash and concurrency tests"]
fn child_writer() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = std::env::var_os(ROOT_ENV).map_or_else(|| tmp.path().to_path_buf(), Into::into);
    let count: usize = std::env::var(COUNT_ENV)
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(6);
    let store = Store::open(&root).expect("open store");
    let tag = format!("p{}", std::process::id());
    for i in 0..count {
        write_round(&store, &tag, i);
    }
    assert!(store.check(false).expect("check").is_ok());
}

fn spawn_writer(root: &Path, count: usize) -> Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--ignored",
            "--exact",
            "child_writer",
            "--test-threads=1",
            "-q",
        ])
        .env(ROOT_ENV, root)
        .env(COUNT_ENV, count.to_string())
        .spawn()
        .expect("spawn writer")
}

fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(0);
    h.finish()
}

#[test]
fn sigkill_at_random_points_leaves_a_checkable_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    Store::open(&root).expect("create store");
    for round in 0..12 {
        let mut child = spawn_writer(&root, 10_000);
        std::thread::sleep(Duration::from_millis(20 + random_u64() % 300));
        child.kill().expect("SIGKILL writer");
        child.wait().expect("reap writer");
        let store = Store::open(&root).expect("store opens after a crash");
        let report = store.check(false).expect("check runs");
        assert!(report.is_ok(), "round {round}: {report:?}");
    }
    let store = Store::open(&root).expect("open");
    assert!(store.check(true).expect("repair").repaired);
    let after = store.check(false).expect("check");
    assert!(after.is_ok() && !after.has_orphans(), "{after:?}");
    let images = store.list_images(&ImageFilter::default()).expect("list");
    assert!(!images.is_empty(), "some writes completed before the kills");
}

#[test]
fn concurrent_processes_both_succeed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let children = [spawn_writer(&root, 8), spawn_writer(&root, 8)];
    for mut child in children {
        assert!(child.wait().expect("wait").success(), "writer failed");
    }
    let store = Store::open(&root).expect("open");
    // Each writer removes every third tag (2 of its 8 images).
    assert_eq!(
        store
            .list_images(&ImageFilter::default())
            .expect("list")
            .len(),
        12
    );
    assert!(store.check(false).expect("check").is_ok());
}

#[test]
fn concurrent_threads_with_separate_connections_both_succeed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let handles: Vec<_> = (0..2)
        .map(|t| {
            let root = root.clone();
            std::thread::spawn(move || {
                let store = Store::open(&root).expect("open");
                (0..15)
                    .map(|i| put(&store, &format!("t{t}-{i}"), &[&format!("t{t}:{i}")]).id)
                    .count()
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().expect("thread"), 15);
    }
    let store = Store::open(&root).expect("open");
    assert_eq!(
        store
            .list_images(&ImageFilter::default())
            .expect("list")
            .len(),
        30
    );
    assert!(store.check(false).expect("check").is_ok());
}
