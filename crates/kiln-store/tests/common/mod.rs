//! Shared helpers: fake layers and images written into a store.

#![allow(dead_code)]

use std::collections::HashMap;

use kiln_image::oci_spec::image::{Arch, MediaType, Os};
use kiln_image::{
    BuiltImage, ImageBuilder, LayerInfo, MediaFlavor, Reference, history_entry, sha256_digest,
};
use kiln_store::{ImageRecord, StageRef, Store};

/// Writes a fake layer blob whose content derives from `seed`.
pub fn layer(store: &Store, seed: &str) -> LayerInfo {
    let blob = format!("layer-blob-{seed}").repeat(64).into_bytes();
    let digest = store.content().write_bytes(&blob).expect("write layer");
    LayerInfo {
        digest,
        diff_id: sha256_digest(format!("diff-{seed}").as_bytes()),
        size: blob.len() as u64,
        media_type: MediaType::ImageLayerGzip,
    }
}

/// Builds (without storing) an image with `layers` and `labels`; `seed`
/// makes its config unique.
pub fn build(seed: &str, layers: &[LayerInfo], labels: &[(&str, &str)]) -> BuiltImage {
    let mut b = ImageBuilder::scratch(Os::Linux, Arch::Amd64);
    for l in layers {
        b.add_layer(
            l.clone(),
            history_entry(&format!("RUN {seed}"), None, false),
        );
    }
    b.add_empty_layer(history_entry(&format!("LABEL seed={seed}"), None, true));
    let labels: HashMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if !labels.is_empty() {
        b.config_mut().update_runtime(|c| {
            c.set_labels(Some(labels));
        });
    }
    b.build(MediaFlavor::Oci).expect("build image")
}

/// Stores a final image with its own layer, tagged with `tags`.
pub fn put(store: &Store, seed: &str, tags: &[&str]) -> ImageRecord {
    let l = layer(store, seed);
    let built = build(seed, &[l], &[]);
    store
        .put_built(&built, refs(tags), None)
        .expect("put image")
}

/// Stores an untagged intermediate image for stage `stage`.
pub fn put_intermediate(store: &Store, seed: &str, labels: &[(&str, &str)]) -> ImageRecord {
    let l = layer(store, seed);
    let built = build(seed, &[l], labels);
    let stage = StageRef {
        build_id: "b1".into(),
        stage: seed.into(),
    };
    store
        .put_built(&built, Vec::new(), Some(stage))
        .expect("put intermediate")
}

pub fn refs(tags: &[&str]) -> Vec<Reference> {
    tags.iter()
        .map(|t| Reference::parse(t).expect("valid tag"))
        .collect()
}

pub fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path().join("root")).expect("open store");
    (dir, store)
}
