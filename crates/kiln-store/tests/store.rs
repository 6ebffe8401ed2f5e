//! Store operations and their error cases.

mod common;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use common::{build, layer, open, put, put_intermediate, refs};
use kiln_store::{
    ImageFilter, PruneFilter, PutImage, StageRef, Store, StoreError, parse_until, root_from_env,
};

#[test]
fn resolve_by_tag_id_prefix_and_digest() {
    let (_d, store) = open();
    let img = put(&store, "a", &["busybox"]);
    let hex = img.id.digest().to_string();
    let names = [
        "busybox".to_string(),
        "busybox:latest".to_string(),
        "docker.io/library/busybox:latest".to_string(),
        img.id.to_string(),
        hex.clone(),
        hex[..12].to_string(),
        format!("sha256:{}", &hex[..5]),
        img.manifest_digest.to_string(),
        format!("busybox@{}", img.manifest_digest),
    ];
    for name in names {
        assert_eq!(store.resolve(&name).expect(&name).id, img.id, "{name}");
    }
    assert_eq!(img.tags, refs(&["busybox"]));
    assert_eq!(img.short_id(), hex[..12]);
}

#[test]
fn resolve_missing_names_the_reference() {
    let (_d, store) = open();
    put(&store, "a", &["busybox"]);
    for name in ["nothere", "busybox:other", "ffffffffffff", "Bad Name"] {
        let err = store.resolve(name).unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{name}: {err}");
        assert_eq!(err.to_string(), format!("No such image: {name}"));
    }
}

#[test]
fn ambiguous_id_prefix_is_an_error() {
    let (_d, store) = open();
    // 17 images guarantee two IDs share a first hex digit.
    let ids: Vec<String> = (0..17)
        .map(|i| put(&store, &format!("img{i}"), &[]).id.digest().to_string())
        .collect();
    let first = ids
        .iter()
        .map(|id| &id[..1])
        .find(|c| ids.iter().filter(|id| id.starts_with(*c)).count() > 1)
        .expect("pigeonhole");
    let err = store.resolve(first).unwrap_err();
    assert!(matches!(err, StoreError::AmbiguousId(_)), "{err}");
    assert_eq!(
        err.to_string(),
        format!("multiple IDs found with provided prefix: {first}")
    );
}

#[test]
fn put_image_requires_blobs_in_content() {
    let (_d, store) = open();
    let l = layer(&store, "x");
    let built = build("x", std::slice::from_ref(&l), &[]);
    store.content().write_bytes(&built.config_bytes).unwrap();
    let manifest = store.content().write_bytes(&built.manifest_bytes).unwrap();
    store.content().delete(&l.digest).unwrap();
    let req = PutImage {
        manifest: manifest.clone(),
        tags: refs(&["x"]),
        intermediate: None,
    };
    match store.put_image(&req) {
        Err(StoreError::MissingBlob(d)) => assert_eq!(d, l.digest),
        other => panic!("expected MissingBlob, got {other:?}"),
    }
    store.content().delete(&manifest).unwrap();
    assert!(matches!(store.put_image(&req), Err(StoreError::MissingBlob(d)) if d == manifest));
    assert!(store.resolve("x").is_err(), "nothing recorded on failure");
}

#[test]
fn put_image_records_layers_and_repo_digests() {
    let (_d, store) = open();
    let shared = layer(&store, "base");
    let own = layer(&store, "own");
    let built = build("app", &[shared.clone(), own.clone()], &[("k", "v")]);
    let img = store
        .put_built(&built, refs(&["app:1", "app:2", "lab/app"]), None)
        .unwrap();
    let layers = store.image_layers(&img.id).unwrap();
    assert_eq!(
        layers.iter().map(|l| &l.digest).collect::<Vec<_>>(),
        vec![&shared.digest, &own.digest]
    );
    assert_eq!(layers[1].diff_id, own.diff_id);
    assert_eq!(img.labels.get("k").map(String::as_str), Some("v"));
    assert_eq!(
        img.stored_size,
        built.config_bytes.len() as u64 + shared.size + own.size
    );
    // Fake layers are not tars: they have no content to count.
    assert_eq!(img.size, 0);
    let digests: Vec<String> = img
        .repo_digests()
        .iter()
        .map(|r| r.familiar_string())
        .collect();
    assert_eq!(
        digests,
        vec![
            format!("lab/app@{}", img.manifest_digest),
            format!("app@{}", img.manifest_digest)
        ],
        "one per repository, sorted by full name"
    );
}

#[test]
fn storing_an_image_again_updates_its_record_and_survives_reopening() {
    let (dir, store) = open();
    let l = layer(&store, "again");
    let built = build("again", std::slice::from_ref(&l), &[]);
    let stage = |build_id: &str, stage: &str| StageRef {
        build_id: build_id.into(),
        stage: stage.into(),
    };
    let first = store
        .put_built(&built, Vec::new(), Some(stage("b1", "builder")))
        .unwrap();
    // Unchanged but for the build: only the build ID moves.
    let second = store
        .put_built(&built, Vec::new(), Some(stage("b2", "builder")))
        .unwrap();
    assert_eq!(second.id, first.id);
    assert_eq!(second.intermediate, Some(stage("b2", "builder")));
    assert!(second.stored_at >= first.stored_at);
    // Another stage name, then a tag: real changes.
    let renamed = store
        .put_built(&built, Vec::new(), Some(stage("b3", "other")))
        .unwrap();
    assert_eq!(renamed.intermediate, Some(stage("b3", "other")));
    let tagged = store.put_built(&built, refs(&["again:1"]), None).unwrap();
    assert_eq!(tagged.intermediate, None);
    assert_eq!(tagged.tags, refs(&["again:1"]));
    let same = store.put_built(&built, refs(&["again:1"]), None).unwrap();
    assert_eq!(same.tags, tagged.tags);
    drop(store);
    let reopened = Store::open(dir.path().join("root")).unwrap();
    let got = reopened.resolve("again:1").unwrap();
    assert_eq!(got.id, first.id);
    assert_eq!(reopened.image_layers(&got.id).unwrap().len(), 1);
}

#[test]
fn tag_moves_and_errors() {
    let (_d, store) = open();
    let a = put(&store, "a", &["app:v1"]);
    let b = put(&store, "b", &[]);
    let tagged = store.tag(a.id.as_ref(), "other/app:x").unwrap();
    assert_eq!(tagged.tags, refs(&["app:v1", "other/app:x"]));
    store.tag(b.short_id().as_str(), "app:v1").unwrap();
    assert_eq!(store.resolve("app:v1").unwrap().id, b.id);
    assert_eq!(store.image(&a.id).unwrap().tags, refs(&["other/app:x"]));
    assert!(matches!(
        store.tag("missing", "x"),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.tag("app:v1", "UPPER"),
        Err(StoreError::Reference(_))
    ));
    let with_digest = format!("x@{}", a.manifest_digest);
    assert!(matches!(
        store.tag("app:v1", &with_digest),
        Err(StoreError::TagWithDigest(_))
    ));
}

#[test]
fn untag_and_missing_tag() {
    let (_d, store) = open();
    let a = put(&store, "a", &["app"]);
    store.untag("app").unwrap();
    let a = store.image(&a.id).unwrap();
    assert!(a.is_dangling());
    let err = store.untag("app").unwrap_err();
    assert!(matches!(err, StoreError::NoSuchTag(_)));
    assert_eq!(err.to_string(), "No such image: app:latest");
}

#[test]
fn rmi_by_tag_only_untags_while_other_tags_remain() {
    let (_d, store) = open();
    let a = put(&store, "a", &["app:1", "app:2"]);
    let r = store.remove_image("app:1", false).unwrap();
    assert_eq!(r.untagged, refs(&["app:1"]));
    assert_eq!(r.deleted, None);
    let r = store.remove_image("app:2", false).unwrap();
    assert_eq!(r.deleted, Some(a.id.clone()));
    assert!(matches!(store.image(&a.id), Err(StoreError::NotFound(_))));
}

#[test]
fn rmi_by_id_needs_force_across_repositories() {
    let (_d, store) = open();
    let a = put(&store, "a", &["app:1", "lab/app:1"]);
    let err = store.remove_image(&a.short_id(), false).unwrap_err();
    assert!(
        matches!(err, StoreError::MultipleRepositories { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("must be forced"));
    assert_eq!(store.image(&a.id).unwrap().tags.len(), 2, "nothing removed");
    let r = store.remove_image(&a.short_id(), true).unwrap();
    assert_eq!(r.untagged.len(), 2);
    assert_eq!(r.deleted, Some(a.id));
}

#[test]
fn rmi_by_id_with_one_repository_untags_all() {
    let (_d, store) = open();
    let a = put(&store, "a", &["app:1", "app:2"]);
    let r = store.remove_image(a.id.as_ref(), false).unwrap();
    assert_eq!(r.untagged, refs(&["app:1", "app:2"]));
    assert_eq!(r.deleted, Some(a.id));
    assert!(matches!(
        store.remove_image("app:1", false),
        Err(StoreError::NotFound(_))
    ));
}

#[test]
fn list_images_filters() {
    let (_d, store) = open();
    let tagged = put(&store, "a", &["busybox:1", "lab/busybox"]);
    let dangling = put(&store, "b", &[]);
    let stage = put_intermediate(&store, "c", &[("stage", "yes")]);
    let ids = |f: &ImageFilter| -> BTreeSet<String> {
        store
            .list_images(f)
            .unwrap()
            .into_iter()
            .map(|i| i.id.to_string())
            .collect()
    };
    let set = |v: &[&kiln_store::ImageRecord]| -> BTreeSet<String> {
        v.iter().map(|i| i.id.to_string()).collect()
    };
    assert_eq!(ids(&ImageFilter::default()), set(&[&tagged, &dangling]));
    assert_eq!(
        ids(&ImageFilter::parse(true, &[] as &[&str]).unwrap()),
        set(&[&tagged, &dangling, &stage])
    );
    assert_eq!(
        ids(&ImageFilter::parse(false, &["dangling=true"]).unwrap()),
        set(&[&dangling])
    );
    assert_eq!(
        ids(&ImageFilter::parse(true, &["dangling=false"]).unwrap()),
        set(&[&tagged])
    );
    assert_eq!(
        ids(&ImageFilter::parse(true, &["label=stage"]).unwrap()),
        set(&[&stage])
    );
    assert_eq!(
        ids(&ImageFilter::parse(true, &["label=stage=no"]).unwrap()),
        set(&[])
    );
    assert_eq!(
        ids(&ImageFilter::parse(true, &["until=1970-01-02T00:00:00Z"]).unwrap()),
        set(&[])
    );
    let by_ref = store
        .list_images(&ImageFilter::parse(false, &["reference=lab/*"]).unwrap())
        .unwrap();
    assert_eq!(by_ref.len(), 1);
    assert_eq!(
        by_ref[0].tags,
        refs(&["lab/busybox"]),
        "tags narrowed to matches"
    );
    let either = ImageFilter::parse(false, &["reference=nomatch", "reference=busy*"]).unwrap();
    assert_eq!(ids(&either), set(&[&tagged]));
}

#[test]
fn filter_parse_errors() {
    for bad in [
        "bogus=1",
        "dangling=maybe",
        "label",
        "until=soon",
        "reference!=x",
        "reference=[",
    ] {
        assert!(
            matches!(
                ImageFilter::parse(false, &[bad]),
                Err(StoreError::InvalidFilter(_))
            ),
            "{bad}"
        );
    }
    assert!(matches!(
        PruneFilter::parse(&["dangling=true"]),
        Err(StoreError::InvalidFilter(_))
    ));
    assert_eq!(parse_until("24h", 100_000).unwrap(), 100_000 - 86_400);
    assert_eq!(parse_until("1h30m", 10_000).unwrap(), 10_000 - 5_400);
    assert_eq!(parse_until("1700000000", 0).unwrap(), 1_700_000_000);
    assert_eq!(parse_until("1970-01-01T00:01:00Z", 0).unwrap(), 60);
}

#[test]
fn prune_with_label_filter_removes_only_matching_intermediates() {
    let (_d, store) = open();
    let keep_tagged = put(&store, "t", &["app"]);
    let doomed = put_intermediate(&store, "x", &[("build", "1")]);
    let other = put_intermediate(&store, "y", &[("build", "2")]);
    let report = store
        .prune(&PruneFilter::parse(&["label=build=1"]).unwrap())
        .unwrap();
    assert_eq!(report.removed, vec![doomed.id.clone()]);
    assert!(report.bytes_reclaimed > 0);
    assert!(
        !store.content().contains(&doomed.id),
        "config blob collected"
    );
    assert!(store.image(&other.id).is_ok());
    assert!(store.image(&keep_tagged.id).is_ok());
    let report = store
        .prune(&PruneFilter::parse(&["label!=build=2"]).unwrap())
        .unwrap();
    assert!(report.removed.is_empty());
    let report = store
        .prune(&PruneFilter::parse(&["until=1970-01-02T00:00:00Z"]).unwrap())
        .unwrap();
    assert!(
        report.removed.is_empty(),
        "image created after the cutoff stays"
    );
    let report = store.prune(&PruneFilter::default()).unwrap();
    assert_eq!(report.removed, vec![other.id]);
    assert!(
        store.image(&keep_tagged.id).is_ok(),
        "tagged images never pruned"
    );
}

#[test]
fn gc_frees_only_unshared_blobs() {
    let (_d, store) = open();
    let shared = layer(&store, "shared");
    let only_a = layer(&store, "only-a");
    let a = store
        .put_built(
            &build("a", &[shared.clone(), only_a.clone()], &[]),
            refs(&["a"]),
            None,
        )
        .unwrap();
    let b = store
        .put_built(
            &build("b", std::slice::from_ref(&shared), &[]),
            refs(&["b"]),
            None,
        )
        .unwrap();
    assert!(
        store.gc().unwrap().blobs_removed.is_empty(),
        "nothing to collect yet"
    );
    let config_size = store.content().size(&a.id).unwrap();
    let manifest_size = store.content().size(&a.manifest_digest).unwrap();
    store.remove_image("a", false).unwrap();
    let report = store.gc().unwrap();
    let removed: BTreeSet<String> = report
        .blobs_removed
        .iter()
        .map(ToString::to_string)
        .collect();
    let want: BTreeSet<String> = [&a.id, &a.manifest_digest, &only_a.digest]
        .iter()
        .map(|d| d.to_string())
        .collect();
    assert_eq!(removed, want);
    assert_eq!(
        report.bytes_freed,
        config_size + manifest_size + only_a.size
    );
    for d in [&shared.digest, &b.id, &b.manifest_digest] {
        assert!(store.content().contains(d), "{d} kept");
    }
    assert!(store.check(false).unwrap().is_ok());
}

#[test]
fn leases_protect_content_until_released() {
    let (_d, store) = open();
    let old = layer(&store, "old");
    // Blobs written well before the lease (past the store's 2 s clock
    // slack, plus one second of truncation) are not covered.
    std::thread::sleep(Duration::from_millis(3100));
    let lease = store.lease(Duration::from_secs(600)).unwrap();
    let fresh = layer(&store, "fresh");
    assert!(store.gc().unwrap().blobs_removed.contains(&old.digest));
    assert!(
        store.content().contains(&fresh.digest),
        "written under the lease"
    );
    let reused = layer(&store, "reused");
    lease.protect_blob(&reused.digest).unwrap();
    lease.release().unwrap();
    let report = store.gc().unwrap();
    assert!(report.blobs_removed.contains(&fresh.digest));
    assert!(report.blobs_removed.contains(&reused.digest));
}

#[test]
fn explicit_protection_and_expiry() {
    let (_d, store) = open();
    let blob = layer(&store, "kept");
    std::thread::sleep(Duration::from_millis(1100));
    let lease = store.lease(Duration::from_secs(600)).unwrap();
    lease.protect_blob(&blob.digest).unwrap();
    assert!(store.gc().unwrap().blobs_removed.is_empty());
    assert!(store.content().contains(&blob.digest));
    lease.renew(Duration::ZERO).unwrap();
    assert_eq!(
        store.gc().unwrap().blobs_removed,
        vec![blob.digest.clone()],
        "expired lease protects nothing"
    );
    assert!(matches!(
        lease.renew(Duration::from_secs(60)),
        Err(StoreError::LeaseExpired(_))
    ));
}

#[test]
fn dropping_a_lease_releases_it() {
    let (_d, store) = open();
    {
        let _lease = store.lease(Duration::from_secs(600)).unwrap();
        layer(&store, "in-flight");
        assert!(store.gc().unwrap().blobs_removed.is_empty());
    }
    assert_eq!(store.gc().unwrap().blobs_removed.len(), 1);
}

fn unpack(store: &Store, seed: &str) -> PathBuf {
    let tmp = store.tmp_dir().unwrap().keep();
    std::fs::write(tmp.join("file"), seed).unwrap();
    tmp
}

#[test]
fn unpacked_layers_are_shared_and_collected() {
    let (_d, store) = open();
    let used = layer(&store, "used");
    store
        .put_built(
            &build("img", std::slice::from_ref(&used), &[]),
            refs(&["img"]),
            None,
        )
        .unwrap();
    let unused = kiln_image::sha256_digest(b"unused");
    let u = store
        .add_unpacked(&used.diff_id, &unpack(&store, "u"), 1)
        .unwrap();
    assert_eq!(std::fs::read_to_string(u.path.join("file")).unwrap(), "u");
    let again = store
        .add_unpacked(&used.diff_id, &unpack(&store, "other"), 1)
        .unwrap();
    assert_eq!(again.path, u.path);
    assert_eq!(
        std::fs::read_to_string(again.path.join("file")).unwrap(),
        "u",
        "first unpack wins"
    );
    let gone = store
        .add_unpacked(&unused, &unpack(&store, "x"), 5)
        .unwrap();
    assert_eq!(store.unpacked(&unused).unwrap().map(|l| l.size), Some(5));
    let report = store.gc().unwrap();
    assert_eq!(report.unpacked_removed, 1);
    assert!(!gone.path.exists());
    assert!(store.unpacked(&unused).unwrap().is_none());
    assert!(store.unpacked(&used.diff_id).unwrap().is_some());
}

#[test]
fn check_reports_and_repairs_unpacked_leftovers() {
    let (_d, store) = open();
    let used = layer(&store, "used");
    store
        .put_built(
            &build("img", std::slice::from_ref(&used), &[]),
            refs(&["img"]),
            None,
        )
        .unwrap();
    let l = store
        .add_unpacked(&used.diff_id, &unpack(&store, "u"), 1)
        .unwrap();
    std::fs::create_dir(store.layers_dir().join("crashed-unpack")).unwrap();
    std::fs::remove_dir_all(&l.path).unwrap();
    let report = store.check(false).unwrap();
    assert_eq!(
        report.orphan_unpacked,
        vec![store.layers_dir().join("crashed-unpack")]
    );
    assert_eq!(report.stale_unpacked, vec![used.diff_id.to_string()]);
    assert!(report.is_ok() && report.has_orphans());
    assert!(
        store.unpacked(&used.diff_id).unwrap().is_none(),
        "a row without its directory is ignored"
    );
    assert!(store.check(true).unwrap().repaired);
    let after = store.check(false).unwrap();
    assert!(after.is_ok() && !after.has_orphans(), "{after:?}");
}

#[test]
fn check_detects_corruption_missing_blobs_and_orphans() {
    let (_d, store) = open();
    let a = put(&store, "a", &["a"]);
    let b = put(&store, "b", &["b"]);
    let orphan = store.content().write_bytes(b"orphan").unwrap();
    let clean = store.check(false).unwrap();
    assert!(clean.is_ok(), "{clean:?}");
    assert_eq!(clean.orphan_blobs, vec![orphan.clone()]);
    let a_layer = store.image_layers(&a.id).unwrap().remove(0).digest;
    std::fs::write(store.content().blob_path(&a_layer), b"garbage").unwrap();
    store.content().delete(&b.manifest_digest).unwrap();
    let report = store.check(false).unwrap();
    assert!(!report.is_ok());
    assert_eq!(report.corrupt_blobs, vec![a_layer]);
    assert_eq!(
        report.missing_blobs,
        vec![(b.id.clone(), b.manifest_digest.clone())]
    );
    let repaired = store.check(true).unwrap();
    let removed: BTreeSet<String> = repaired
        .removed_images
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        removed,
        [a.id.to_string(), b.id.to_string()].into_iter().collect()
    );
    let after = store.check(false).unwrap();
    assert!(after.is_ok() && !after.has_orphans(), "{after:?}");
    assert!(!store.content().contains(&orphan));
}

#[test]
fn disk_usage_counts_reclaimable_space() {
    let (_d, store) = open();
    let kept = put(&store, "kept", &["kept"]);
    let stage = put_intermediate(&store, "stage", &[]);
    let df = store.disk_usage().unwrap();
    assert_eq!(df.images.count, 2);
    let blob_sum = |ids: &[&kiln_store::ImageRecord]| -> u64 {
        ids.iter()
            .map(|i| {
                let c = store.content();
                c.size(&i.id).unwrap()
                    + c.size(&i.manifest_digest).unwrap()
                    + store
                        .image_layers(&i.id)
                        .unwrap()
                        .iter()
                        .map(|l| l.size)
                        .sum::<u64>()
            })
            .sum()
    };
    assert_eq!(df.images.size, blob_sum(&[&kept, &stage]));
    assert_eq!(df.images.reclaimable, blob_sum(&[&stage]));
    assert_eq!(df.build_cache, kiln_store::UsageLine::default());
    store.prune(&PruneFilter::default()).unwrap();
    let df = store.disk_usage().unwrap();
    assert_eq!((df.images.count, df.images.reclaimable), (1, 0));
}

#[test]
fn default_root_follows_environment() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| OsString::from(v))
        }
    };
    assert_eq!(
        root_from_env(env(&[("KILN_ROOT", "/r"), ("HOME", "/h")]), true),
        PathBuf::from("/r")
    );
    assert_eq!(
        root_from_env(env(&[("HOME", "/h")]), true),
        PathBuf::from("/var/lib/kiln")
    );
    assert_eq!(
        root_from_env(env(&[("XDG_DATA_HOME", "/x"), ("HOME", "/h")]), false),
        PathBuf::from("/x/kiln")
    );
    assert_eq!(
        root_from_env(env(&[("HOME", "/h")]), false),
        PathBuf::from("/h/.local/share/kiln")
    );
    assert_eq!(
        root_from_env(env(&[("KILN_ROOT", "")]), true),
        PathBuf::from("/var/lib/kiln")
    );
}

#[test]
fn schema_is_versioned() {
    let (dir, store) = open();
    put(&store, "a", &["a"]);
    drop(store);
    let db = dir.path().join("root/meta.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let v: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, kiln_store::schema_version());
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let reopened = Store::open(dir.path().join("root")).unwrap();
    assert!(reopened.resolve("a").is_ok(), "data survives reopening");
    drop(reopened);
    conn.pragma_update(None, "user_version", 99).unwrap();
    assert!(matches!(
        Store::open(dir.path().join("root")),
        Err(StoreError::SchemaTooNew { found: 99, .. })
    ));
}

#[test]
fn leases_protect_unpacked_layers() {
    let (_d, store) = open();
    let diff_id = kiln_image::sha256_digest(b"cache");
    store
        .add_unpacked(&diff_id, &unpack(&store, "c"), 1)
        .unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let lease = store.lease(Duration::from_secs(600)).unwrap();
    lease.protect_unpacked(&diff_id).unwrap();
    assert_eq!(store.gc().unwrap().unpacked_removed, 0);
    assert!(store.unpacked(&diff_id).unwrap().is_some());
    lease.release().unwrap();
    assert_eq!(store.gc().unwrap().unpacked_removed, 1);
    assert!(store.unpacked(&diff_id).unwrap().is_none());
}

/// A gzip layer tar like the one docker 20.10 measured: regular files,
/// a symlink, a hard link, a whiteout, an opaque marker and directories.
/// Returns the blob and the size docker reports for it, computed here from
/// the entries: regular file bytes plus symlink target lengths.
fn real_layer(seed: &str) -> (Vec<u8>, u64) {
    use std::io::Write;
    use tar::{EntryType, Header};
    let files: Vec<(String, Vec<u8>)> = vec![
        (format!("{seed}/a"), seed.repeat(300).into_bytes()),
        ("etc/conf".into(), b"key=value\n".to_vec()),
    ];
    let links = [("bin/sh", "../usr/bin/busybox"), ("lib", "usr/lib")];
    let mut b = tar::Builder::new(Vec::new());
    let head = |kind: EntryType, size: usize| {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(0o755);
        h.set_size(size as u64);
        h.set_mtime(0);
        h
    };
    for dir in [format!("{seed}/"), "etc/".into(), "bin/".into()] {
        b.append_data(&mut head(EntryType::Directory, 0), dir, &[][..])
            .unwrap();
    }
    for (name, data) in &files {
        b.append_data(
            &mut head(EntryType::Regular, data.len()),
            name,
            data.as_slice(),
        )
        .unwrap();
    }
    for (name, target) in links {
        b.append_link(&mut head(EntryType::Symlink, 0), name, target)
            .unwrap();
    }
    b.append_link(&mut head(EntryType::Link, 0), "etc/conf2", "etc/conf")
        .unwrap();
    b.append_data(&mut head(EntryType::Regular, 0), "etc/.wh.old", &[][..])
        .unwrap();
    b.append_data(
        &mut head(EntryType::Regular, 0),
        "bin/.wh..wh..opq",
        &[][..],
    )
    .unwrap();
    let tar = b.into_inner().unwrap();

    // Independently of the implementation: walk the tar we just wrote.
    let mut want = 0;
    for e in tar::Archive::new(tar.as_slice()).entries().unwrap() {
        let e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        if name.rsplit('/').next().unwrap().starts_with(".wh.") {
            continue;
        }
        match e.header().entry_type() {
            EntryType::Regular => want += e.header().size().unwrap(),
            EntryType::Symlink => want += e.link_name_bytes().unwrap().len() as u64,
            _ => {}
        }
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    (gz.finish().unwrap(), want)
}

fn put_real_layer(store: &Store, seed: &str) -> (kiln_image::LayerInfo, u64) {
    let (blob, want) = real_layer(seed);
    let digest = store.content().write_bytes(&blob).unwrap();
    let info = kiln_image::LayerInfo {
        digest,
        diff_id: kiln_image::sha256_digest(seed.as_bytes()),
        size: blob.len() as u64,
        media_type: kiln_image::oci_spec::image::MediaType::ImageLayerGzip,
    };
    (info, want)
}

#[test]
fn image_size_is_layer_content_as_docker_counts_it() {
    let (_d, store) = open();
    let (base, base_want) = put_real_layer(&store, "base");
    let (top, top_want) = put_real_layer(&store, "top");
    assert_eq!(base_want, 4 * 300 + 10 + 18 + 7);
    let built = build("real", &[base.clone(), top.clone()], &[]);
    let img = store.put_built(&built, refs(&["real"]), None).unwrap();
    assert_eq!(img.size, base_want + top_want);
    assert_eq!(
        img.stored_size,
        built.config_bytes.len() as u64 + base.size + top.size
    );
    assert_eq!(
        store.layer_content_sizes(&img.id).unwrap(),
        vec![base_want, top_want]
    );
    assert_eq!(store.resolve("real").unwrap().size, img.size);
}

#[test]
fn content_sizes_of_older_stores_are_filled_lazily() {
    let (dir, store) = open();
    let (layer, want) = put_real_layer(&store, "old");
    let built = build("old", std::slice::from_ref(&layer), &[]);
    store.put_built(&built, refs(&["old"]), None).unwrap();
    drop(store);
    // What a store migrated from version 2 looks like.
    let conn = rusqlite::Connection::open(dir.path().join("root/meta.db")).unwrap();
    conn.execute("UPDATE layers SET content_size = NULL", [])
        .unwrap();
    drop(conn);
    let store = Store::open(dir.path().join("root")).unwrap();
    let listed = store.list_images(&ImageFilter::default()).unwrap();
    assert_eq!(listed[0].size, want);
    let conn = rusqlite::Connection::open(dir.path().join("root/meta.db")).unwrap();
    let stored: i64 = conn
        .query_row("SELECT content_size FROM layers", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored as u64, want, "filled once, then kept");
}
