//! Content checksums: stable over equal trees, sensitive to content, mode
//! and link targets, blind to mtimes, cached by stat with ctime/inode.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use filetime::FileTime;
use kiln_context::{CacheStats, Context, HashCache, IgnoreMatcher};

fn build_tree(root: &Path) {
    fs::create_dir_all(root.join("app/lib")).unwrap();
    fs::write(root.join("app/main.rs"), "fn main() {}").unwrap();
    fs::write(root.join("app/lib/util.rs"), "pub fn util() {}").unwrap();
    fs::write(root.join("app/debug.log"), "noise").unwrap();
    symlink("main.rs", root.join("app/entry")).unwrap();
    fs::write(root.join("other.txt"), "other").unwrap();
}

fn sum(root: &Path, pattern: &str) -> String {
    let ctx = Context::dir(root, IgnoreMatcher::parse("**/*.log").unwrap()).unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    let mut cache = HashCache::open(cache_dir.path().join("cache")).unwrap();
    ctx.checksum(&ctx.select(pattern).unwrap(), &mut cache)
        .unwrap()
}

fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    build_tree(dir.path());
    dir
}

#[test]
fn equal_trees_in_different_places_agree() {
    let (a, b) = (tree(), tree());
    let digest = sum(a.path(), "app");
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    assert_eq!(digest, sum(b.path(), "app"));
    assert_eq!(sum(a.path(), "*.txt"), sum(b.path(), "*.txt"));
    assert_ne!(sum(a.path(), "app"), sum(a.path(), "other.txt"));
}

#[test]
fn content_mode_and_link_target_matter() {
    let base = sum(tree().path(), "app");

    let content = tree();
    fs::write(content.path().join("app/lib/util.rs"), "pub fn UTIL() {}").unwrap();
    assert_ne!(sum(content.path(), "app"), base, "content change");

    let mode = tree();
    fs::set_permissions(
        mode.path().join("app/main.rs"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    assert_ne!(sum(mode.path(), "app"), base, "mode change");

    let link = tree();
    fs::remove_file(link.path().join("app/entry")).unwrap();
    symlink("lib/util.rs", link.path().join("app/entry")).unwrap();
    assert_ne!(sum(link.path(), "app"), base, "symlink target change");

    let renamed = tree();
    fs::rename(
        renamed.path().join("app/main.rs"),
        renamed.path().join("app/Main.rs"),
    )
    .unwrap();
    assert_ne!(sum(renamed.path(), "app"), base, "rename");
}

#[test]
fn excluded_files_and_mtimes_do_not_matter() {
    let base = sum(tree().path(), "app");

    let touched = tree();
    let old = FileTime::from_unix_time(1_000_000_000, 0);
    for f in ["app", "app/main.rs", "app/lib/util.rs"] {
        filetime::set_file_mtime(touched.path().join(f), old).unwrap();
    }
    assert_eq!(sum(touched.path(), "app"), base, "mtime only");

    let ignored = tree();
    fs::write(ignored.path().join("app/debug.log"), "different noise").unwrap();
    assert_eq!(sum(ignored.path(), "app"), base, "excluded file changed");
}

/// Links pointing out of the context are digested as links or resolved
/// inside the root, so host content never influences the result.
#[test]
fn host_files_behind_symlinks_are_never_read() {
    let host = tempfile::tempdir().unwrap();
    let mut digests = Vec::new();
    for content in ["HOST-A", "HOST-B"] {
        fs::write(host.path().join("secret"), content).unwrap();
        let ctx_dir = tempfile::tempdir().unwrap();
        let root = ctx_dir.path();
        fs::create_dir(root.join("src")).unwrap();
        // The same absolute name inside each context, with equal content.
        let shadow = root.join("shadow");
        fs::write(&shadow, "IN-CONTEXT").unwrap();
        symlink("/shadow", root.join("leak")).unwrap();
        symlink(host.path().join("secret"), root.join("hostlink")).unwrap();
        symlink("../../../../../../../../..", root.join("src/up")).unwrap();
        symlink(host.path().join("secret"), root.join("src/abs")).unwrap();
        let ctx = Context::dir(root, IgnoreMatcher::empty()).unwrap();
        let mut cache = HashCache::open(root.join("cache-never-saved")).unwrap();
        // Followed as a source, the host link dangles inside the root.
        assert!(ctx.select("hostlink").is_err());
        let selected = [ctx.select("leak").unwrap(), ctx.select("src").unwrap()].concat();
        digests.push(ctx.checksum(&selected, &mut cache).unwrap());
        assert_eq!(
            cache.stats().files_read,
            1,
            "only the in-context file is read"
        );
    }
    assert_eq!(digests[0], digests[1]);
}

#[test]
fn cache_skips_unchanged_files_but_catches_same_size_same_mtime_rewrites() {
    let dir = tree();
    let root = dir.path();
    let cache_dir = tempfile::tempdir().unwrap();
    let cache_path = cache_dir.path().join("hash-cache");
    let ctx = Context::dir(root, IgnoreMatcher::empty()).unwrap();
    let selected = ctx.select("app").unwrap();

    let mut cache = HashCache::open(&cache_path).unwrap();
    let first = ctx.checksum(&selected, &mut cache).unwrap();
    assert_eq!(
        cache.stats(),
        CacheStats {
            hits: 0,
            files_read: 3
        }
    );
    cache.save().unwrap();

    // Same size, mtime restored: only ctime (and maybe inode) tell.
    let target = root.join("app/main.rs");
    let before = fs::metadata(&target).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    fs::write(&target, "fn MAIN() {}").unwrap();
    filetime::set_file_mtime(&target, FileTime::from_last_modification_time(&before)).unwrap();
    let after = fs::metadata(&target).unwrap();
    assert_eq!(after.len(), before.len());
    assert_eq!(
        FileTime::from_last_modification_time(&after),
        FileTime::from_last_modification_time(&before)
    );

    let mut reopened = HashCache::open(&cache_path).unwrap();
    let second = ctx.checksum(&selected, &mut reopened).unwrap();
    assert_ne!(
        first, second,
        "rewrite with same size and mtime must be detected"
    );
    assert_eq!(
        reopened.stats(),
        CacheStats {
            hits: 2,
            files_read: 1
        }
    );

    let third = ctx.checksum(&selected, &mut reopened).unwrap();
    assert_eq!(third, second);
    assert_eq!(
        reopened.stats(),
        CacheStats {
            hits: 5,
            files_read: 1
        }
    );
}

#[test]
fn corrupt_cache_file_is_ignored() {
    let dir = tree();
    let cache_dir = tempfile::tempdir().unwrap();
    let cache_path = cache_dir.path().join("hash-cache");
    fs::write(
        &cache_path,
        "kiln-context-hash-cache 1\nnot a record\n\u{0}garbage",
    )
    .unwrap();
    let ctx = Context::dir(dir.path(), IgnoreMatcher::empty()).unwrap();
    let mut cache = HashCache::open(&cache_path).unwrap();
    let digest = ctx
        .checksum(&ctx.select("app").unwrap(), &mut cache)
        .unwrap();
    assert_eq!(cache.stats().files_read, 3);
    let fresh_dir = tempfile::tempdir().unwrap();
    let mut fresh = HashCache::open(fresh_dir.path().join("c")).unwrap();
    assert_eq!(
        digest,
        ctx.checksum(&ctx.select("app").unwrap(), &mut fresh)
            .unwrap()
    );
}

/// Many files exercise every hashing thread; the digest must not depend on
/// which thread hashed what.
#[test]
fn parallel_hashing_is_deterministic() {
    let make = || {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..200 {
            let sub = dir.path().join(format!("d{}", i % 7));
            fs::create_dir_all(&sub).unwrap();
            fs::write(sub.join(format!("f{i}")), format!("content {i}").repeat(i)).unwrap();
        }
        dir
    };
    let (a, b) = (make(), make());
    let digest = sum(a.path(), ".");
    assert_eq!(digest, sum(b.path(), "."));
    fs::write(b.path().join("d3/f10"), "changed").unwrap();
    assert_ne!(digest, sum(b.path(), "."));
}

/// More files than one hashing batch: the cold sum (every file read, in parallel) and the
/// warm one (every file from the cache) agree, and a warm run reads nothing.
#[test]
fn many_files_across_batches_sum_alike_cold_and_warm() {
    const FILES: usize = 5_000;
    let dir = tempfile::tempdir().unwrap();
    for i in 0..FILES {
        let sub = dir.path().join(format!("d{}", i % 13));
        fs::create_dir_all(&sub).unwrap();
        fs::write(sub.join(format!("f{i}")), i.to_string()).unwrap();
    }
    let ctx = Context::dir(dir.path(), IgnoreMatcher::empty()).unwrap();
    let selected = ctx.select(".").unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    let mut cache = HashCache::open(cache_dir.path().join("c")).unwrap();
    let cold = ctx.checksum(&selected, &mut cache).unwrap();
    assert_eq!(cache.stats().files_read, FILES as u64);
    let warm = ctx.checksum(&selected, &mut cache).unwrap();
    assert_eq!(warm, cold);
    assert_eq!(
        cache.stats().files_read,
        FILES as u64,
        "a warm sum reads nothing"
    );
    assert_eq!(cache.stats().hits, FILES as u64);
}
