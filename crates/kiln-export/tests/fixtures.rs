//! Archives written by real `docker save` (docker 20.10's `<id>/layer.tar`
//! shape and docker 26's OCI-shaped one), stored gzip-compressed, of the
//! same one-file image made with `docker import`.

mod common;

use std::io::Read;

use common::*;
use flate2::read::GzDecoder;
use kiln_content::{ContentStore, Digest};
use kiln_export::{ImportedImage, import_archive};
use kiln_image::oci_spec::image::{ImageManifest, MediaType};

const DIFF_ID: &str = "sha256:778af0acf2b7dd9d2bbfdd81057091949d9c5de12f5dd9ec700db85d95211098";

fn import_fixture(store: &ContentStore, name: &str) -> ImportedImage {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let mut imported = import_archive(store, std::fs::File::open(path).unwrap()).unwrap();
    assert_eq!(imported.len(), 1);
    imported.remove(0)
}

/// The single gzip layer of an imported image, inflated.
fn only_layer(store: &ContentStore, image: &ImportedImage) -> (Digest, Vec<u8>) {
    let manifest: ImageManifest =
        serde_json::from_slice(&store.read_bytes(&image.manifest_digest, 1 << 20).unwrap())
            .unwrap();
    assert_eq!(manifest.media_type(), &Some(MediaType::ImageManifest));
    assert_eq!(manifest.config().digest(), &image.config_digest);
    let [layer] = manifest.layers().as_slice() else {
        panic!("expected one layer, got {:?}", manifest.layers());
    };
    assert_eq!(layer.media_type(), &MediaType::ImageLayerGzip);
    let mut tar = Vec::new();
    GzDecoder::new(store.open_blob(layer.digest()).unwrap())
        .read_to_end(&mut tar)
        .unwrap();
    (layer.digest().clone(), tar)
}

fn hello_of(tar: &[u8]) -> String {
    for entry in tar::Archive::new(tar).entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().ends_with("hello.txt") {
            let mut s = String::new();
            entry.read_to_string(&mut s).unwrap();
            return s;
        }
    }
    panic!("hello.txt not in the layer");
}

#[test]
fn docker_20_and_26_saves_import_to_the_same_layer() {
    let t = temp_store();
    let old = import_fixture(&t.store, "docker20-save.tar.gz");
    let new = import_fixture(&t.store, "docker26-save.tar.gz");
    assert_eq!(old.tags, vec!["kiln-fixture/tiny:20".to_string()]);
    assert_eq!(new.tags, vec!["kiln-fixture/tiny:26".to_string()]);
    // Image IDs as `docker inspect` showed them: configs are kept verbatim.
    assert_eq!(
        old.config_digest.to_string(),
        "sha256:a19396adb0e8891adcaca97d4a72e745b704e23fea1630480098de07df0b8af1"
    );
    assert_eq!(
        new.config_digest.to_string(),
        "sha256:140d213138b05ca429d79692fec716a826c56d71227e6cf719b8de75cbf2ee13"
    );
    let (old_blob, old_tar) = only_layer(&t.store, &old);
    let (new_blob, new_tar) = only_layer(&t.store, &new);
    assert_eq!(kiln_content::sha256_digest(&old_tar).to_string(), DIFF_ID);
    assert_eq!(old_tar, new_tar);
    // Same tar, same deterministic gzip.
    assert_eq!(old_blob, new_blob);
    assert_eq!(hello_of(&old_tar), "saved by docker 26\n");
    assert_store_consistent(&t);
}
