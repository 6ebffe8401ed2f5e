//! The build cache table: records keep their layers from GC, prune selects by label, age,
//! sharing and storage budget, and `disk_usage` reports them.

mod common;

use std::collections::BTreeMap;

use common::{build, layer, open, put};
use kiln_image::LayerInfo;
use kiln_store::{CacheFilter, CacheRecord, Store};

fn record(key: &str, l: &LayerInfo, stage: &str, last_used: i64) -> CacheRecord {
    CacheRecord {
        key: key.into(),
        diff_id: l.diff_id.clone(),
        layer_digest: l.digest.clone(),
        media_type: l.media_type.to_string(),
        size: l.size,
        created: "2024-01-01T00:00:00Z".into(),
        last_used,
        stage: stage.into(),
        instruction: format!("RUN {key}"),
        labels: BTreeMap::from([("stage".to_string(), stage.to_string())]),
    }
}

/// A record of a fresh layer only the cache holds.
fn cached(store: &Store, key: &str, stage: &str, last_used: i64) -> CacheRecord {
    let l = layer(store, key);
    let r = record(key, &l, stage, last_used);
    store.cache_put(&r).unwrap();
    r
}

fn keys(records: &[CacheRecord]) -> Vec<&str> {
    records.iter().map(|r| r.key.as_str()).collect()
}

#[test]
fn records_round_trip_and_protect_their_layer() {
    let (_d, store) = open();
    let r = cached(&store, "k1", "builder", 100);
    store.gc().unwrap();
    assert!(
        store.content().contains(&r.layer_digest),
        "GC kept the layer"
    );
    let got = store.cache_get("k1").unwrap().expect("record");
    assert_eq!(got.created, r.created);
    assert_eq!(got.labels, r.labels);
    assert!(got.last_used > 100, "a lookup marks the record used");
    assert_eq!(store.cache_get("nope").unwrap(), None);
}

#[test]
fn use_times_and_replaced_records_persist() {
    let (dir, store) = open();
    let mut r = cached(&store, "k1", "builder", 100);
    let used = store.cache_get("k1").unwrap().expect("record").last_used;
    assert!(used > 100);
    // Storing it again as it is keeps it; changed labels replace it.
    r.last_used = used;
    store.cache_put(&r).unwrap();
    assert_eq!(store.cache_get("k1").unwrap().as_ref(), Some(&r));
    r.labels.insert("extra".into(), "1".into());
    store.cache_put(&r).unwrap();
    drop(store);
    let store = Store::open(dir.path().join("root")).unwrap();
    let got = store.cache_get("k1").unwrap().expect("record");
    assert_eq!(got.labels, r.labels);
    assert!(got.last_used >= used, "the use time survives reopening");
}

#[test]
fn put_refuses_a_missing_layer() {
    let (_d, store) = open();
    let (_d2, other) = open();
    let l = layer(&other, "elsewhere");
    assert!(store.cache_put(&record("k", &l, "s", 1)).is_err());
}

#[test]
fn prune_by_label_frees_exactly_those_layers() {
    let (_d, store) = open();
    let a = cached(&store, "a", "builder", 1);
    let b = cached(&store, "b", "app", 1);
    let filter = CacheFilter::parse(false, &["label=stage=builder"], None).unwrap();
    let report = store.prune_cache(&filter).unwrap();
    assert_eq!(keys(&report.removed), ["a"]);
    assert_eq!(report.bytes_freed, a.size);
    assert!(!store.content().contains(&a.layer_digest));
    assert!(store.content().contains(&b.layer_digest));
}

#[test]
fn shared_records_need_all() {
    let (_d, store) = open();
    let l = layer(&store, "shared");
    let built = build("img", std::slice::from_ref(&l), &[]);
    store
        .put_built(&built, common::refs(&["img:1"]), None)
        .unwrap();
    store.cache_put(&record("s", &l, "x", 1)).unwrap();
    let entries = store.cache_entries().unwrap();
    assert!(entries[0].shared);
    let kept = store.prune_cache(&CacheFilter::default()).unwrap();
    assert!(kept.removed.is_empty());
    let all = CacheFilter::parse(true, &[] as &[&str], None).unwrap();
    let gone = store.prune_cache(&all).unwrap();
    assert_eq!(keys(&gone.removed), ["s"]);
    assert_eq!(gone.bytes_freed, 0, "the image still holds the layer");
}

#[test]
fn until_and_keep_storage_remove_oldest_first() {
    let (_d, store) = open();
    let old = cached(&store, "old", "s", 10);
    cached(&store, "mid", "s", 20);
    let new = cached(&store, "new", "s", 30);
    let until = CacheFilter::parse(false, &["until=15"], None).unwrap();
    assert_eq!(keys(&store.prune_cache(&until).unwrap().removed), ["old"]);
    let keep = CacheFilter::parse(false, &[] as &[&str], Some(new.size)).unwrap();
    assert_eq!(keys(&store.prune_cache(&keep).unwrap().removed), ["mid"]);
    assert_eq!(store.cache_entries().unwrap().len(), 1);
    assert!(old.size > 0);
}

#[test]
fn disk_usage_counts_build_cache() {
    let (_d, store) = open();
    put(&store, "image", &["img:1"]);
    let a = cached(&store, "a", "s", 1);
    let b = cached(&store, "b", "s", 1);
    let df = store.disk_usage().unwrap();
    assert_eq!(df.build_cache.count, 2);
    assert_eq!(df.build_cache.size, a.size + b.size);
    assert_eq!(df.build_cache.reclaimable, a.size + b.size);
}

#[test]
fn bad_filters_are_refused() {
    assert!(CacheFilter::parse(false, &["dangling=true"], None).is_err());
    assert!(CacheFilter::parse(false, &["until=soon"], None).is_err());
}
