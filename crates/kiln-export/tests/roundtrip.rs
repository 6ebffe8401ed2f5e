//! Export → import round trips, and imports of the archive shapes other
//! tools write (docker 20.10 `docker save`, docker 25+ OCI-shaped save, a
//! gzip-compressed archive, an OCI layout directory).

mod common;

use std::io::Read;

use common::*;
use flate2::read::GzDecoder;
use kiln_content::{ContentStore, Digest, sha256_digest};
use kiln_export::{
    ExportImage, ImportedImage, export_docker_archive, export_oci_archive, import_archive,
    import_oci_layout_dir,
};
use kiln_image::oci_spec::image::{ImageManifest, MediaType};
use serde_json::json;

const FULL_TAG: &str = "docker.io/kiln-test/small:1";

fn export_image(image: &StoredImage) -> Vec<ExportImage> {
    vec![ExportImage {
        manifest_digest: image.manifest.clone(),
        tags: vec![FULL_TAG.to_string()],
    }]
}

fn manifest_of(store: &ContentStore, d: &Digest) -> ImageManifest {
    serde_json::from_slice(&store.read_bytes(d, 1 << 20).unwrap()).unwrap()
}

/// Each layer of the imported image is a gzip blob whose content is the
/// original tar.
fn assert_layers_are(store: &ContentStore, imported: &ImportedImage, layers: &[Vec<u8>]) {
    let manifest = manifest_of(store, &imported.manifest_digest);
    assert_eq!(manifest.layers().len(), layers.len());
    for (desc, want) in manifest.layers().iter().zip(layers) {
        assert_eq!(desc.media_type(), &MediaType::ImageLayerGzip);
        assert_eq!(store.size(desc.digest()).unwrap(), desc.size());
        let mut tar = Vec::new();
        GzDecoder::new(store.open_blob(desc.digest()).unwrap())
            .read_to_end(&mut tar)
            .unwrap();
        assert_eq!(&tar, want);
    }
    assert_eq!(manifest.config().digest(), &imported.config_digest);
}

#[test]
fn oci_archive_round_trip_keeps_the_manifest() {
    let src = temp_store();
    let image = store_image(&src.store, &small_layers());
    let mut tar = Vec::new();
    export_oci_archive(&src.store, &export_image(&image), &mut tar).unwrap();

    let dst = temp_store();
    let imported = import_archive(&dst.store, &tar[..]).unwrap();
    assert_eq!(
        imported,
        vec![ImportedImage {
            manifest_digest: image.manifest.clone(),
            config_digest: image.config.clone(),
            tags: vec![FULL_TAG.to_string()],
        }]
    );
    for blob in image
        .layer_blobs
        .iter()
        .chain([&image.config, &image.manifest])
    {
        assert!(dst.store.contains(blob), "{blob} not imported");
    }
    assert_layers_are(&dst.store, &imported[0], &small_layers());
    assert_store_consistent(&dst);
}

#[test]
fn docker_archive_round_trip_keeps_the_manifest_and_uses_repo_tags() {
    let src = temp_store();
    let image = store_image(&src.store, &small_layers());
    let mut tar = Vec::new();
    export_docker_archive(&src.store, &export_image(&image), &mut tar).unwrap();

    let dst = temp_store();
    let imported = import_archive(&dst.store, &tar[..]).unwrap();
    assert_eq!(imported.len(), 1);
    assert_eq!(imported[0].manifest_digest, image.manifest);
    assert_eq!(imported[0].config_digest, image.config);
    assert_eq!(imported[0].tags, vec!["kiln-test/small:1".to_string()]);
}

#[test]
fn docker_archive_has_docker_load_metadata() {
    let src = temp_store();
    let image = store_image(&src.store, &small_layers());
    let mut tar = Vec::new();
    export_docker_archive(&src.store, &export_image(&image), &mut tar).unwrap();
    let members = read_members(&tar);
    let manifest: serde_json::Value = serde_json::from_slice(&members["manifest.json"]).unwrap();
    let layers: Vec<String> = image
        .layer_blobs
        .iter()
        .map(|d| format!("blobs/sha256/{}", d.digest()))
        .collect();
    assert_eq!(
        manifest,
        json!([{
            "Config": format!("blobs/sha256/{}", image.config.digest()),
            "RepoTags": ["kiln-test/small:1"],
            "Layers": layers,
        }])
    );
    let repositories: serde_json::Value = serde_json::from_slice(&members["repositories"]).unwrap();
    assert_eq!(
        repositories,
        json!({"kiln-test/small": {"1": image.layer_blobs[1].digest()}})
    );
    for path in manifest[0]["Layers"].as_array().unwrap() {
        assert!(
            members.contains_key(path.as_str().unwrap()),
            "{path} missing"
        );
    }
}

#[test]
fn oci_index_names_images_by_tag_and_full_name() {
    let src = temp_store();
    let image = store_image(&src.store, &small_layers());
    let images = vec![
        ExportImage {
            manifest_digest: image.manifest.clone(),
            tags: vec!["busybox".into(), "localhost:5000/a/b:v2".into()],
        },
        ExportImage {
            manifest_digest: image.manifest.clone(),
            tags: vec![],
        },
    ];
    let mut tar = Vec::new();
    export_oci_archive(&src.store, &images, &mut tar).unwrap();
    let members = read_members(&tar);
    assert_eq!(members["oci-layout"], br#"{"imageLayoutVersion":"1.0.0"}"#);
    let index: serde_json::Value = serde_json::from_slice(&members["index.json"]).unwrap();
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(
        entries[0]["annotations"],
        json!({"io.containerd.image.name": "docker.io/library/busybox:latest", "org.opencontainers.image.ref.name": "latest"})
    );
    assert_eq!(
        entries[1]["annotations"]["org.opencontainers.image.ref.name"],
        "v2"
    );
    assert!(entries[2].get("annotations").is_none());
    assert!(
        entries
            .iter()
            .all(|e| e["digest"] == image.manifest.to_string())
    );
    // Each blob is written once although the image is listed twice.
    let blobs = members
        .keys()
        .filter(|k| k.starts_with("blobs/sha256/"))
        .count();
    assert_eq!(blobs, 4);
    // Read back, the entries of one manifest make one image with all names.
    let imported = import_archive(&temp_store().store, &tar[..]).unwrap();
    assert_eq!(imported.len(), 1);
    assert_eq!(
        imported[0].tags,
        vec!["docker.io/library/busybox:latest", "localhost:5000/a/b:v2"]
    );
}

#[test]
fn docker_v2s2_manifest_round_trips_unchanged() {
    let src = temp_store();
    let image = store_image_as(&src.store, &small_layers(), DOCKER_V2S2);
    let mut tar = Vec::new();
    export_docker_archive(&src.store, &export_image(&image), &mut tar).unwrap();
    let index: serde_json::Value =
        serde_json::from_slice(&read_members(&tar)["index.json"]).unwrap();
    assert_eq!(
        index["manifests"][0]["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let dst = temp_store();
    let imported = import_archive(&dst.store, &tar[..]).unwrap();
    assert_eq!(imported[0].manifest_digest, image.manifest);
    assert_eq!(imported[0].config_digest, image.config);
}

#[test]
fn images_sharing_layers_export_and_import_together() {
    let src = temp_store();
    let base = small_layers().remove(0);
    let first = store_image(&src.store, std::slice::from_ref(&base));
    let second = store_image(&src.store, &[base, small_layers().remove(1)]);
    let images = vec![
        ExportImage {
            manifest_digest: first.manifest.clone(),
            tags: vec!["one:1".into()],
        },
        ExportImage {
            manifest_digest: second.manifest.clone(),
            tags: vec!["two:2".into(), "two:latest".into()],
        },
    ];
    let mut tar = Vec::new();
    export_docker_archive(&src.store, &images, &mut tar).unwrap();
    // The shared base layer is written once.
    let blobs = read_members(&tar)
        .keys()
        .filter(|k| k.starts_with("blobs/"))
        .count();
    // Two manifests, two configs, two distinct layers.
    assert_eq!(blobs, 6);

    let dst = temp_store();
    let imported = import_archive(&dst.store, &tar[..]).unwrap();
    let summary: Vec<_> = imported
        .iter()
        .map(|i| (i.manifest_digest.clone(), i.tags.clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (first.manifest, vec!["one:1".to_string()]),
            (
                second.manifest,
                vec!["two:2".to_string(), "two:latest".to_string()]
            ),
        ]
    );
    assert_store_consistent(&dst);
}

#[test]
fn nested_index_takes_the_present_platform_and_skips_attestations() {
    let src = temp_store();
    let image = store_image(&src.store, &small_layers());
    let mut tar = Vec::new();
    export_oci_archive(&src.store, &export_image(&image), &mut tar).unwrap();
    let members = read_members(&tar);
    let manifest_size = members[&format!("blobs/sha256/{}", image.manifest.digest())].len();
    let absent = sha256_digest(b"arm64 manifest, not saved");
    let attestation = sha256_digest(b"attestation, not saved");
    let nested = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": image.manifest.to_string(),
             "size": manifest_size, "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": absent.to_string(),
             "size": 10, "platform": {"architecture": "arm64", "os": "linux"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": attestation.to_string(),
             "size": 10, "annotations": {"vnd.docker.reference.type": "attestation-manifest"}},
        ],
    }))
    .unwrap();
    let nested_d = sha256_digest(&nested);
    let top = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": nested_d.to_string(),
            "size": nested.len(),
            "annotations": {"io.containerd.image.name": "docker.io/lab/multi:1"},
        }],
    }))
    .unwrap();
    let mut entries: Vec<(String, Vec<u8>)> = members
        .into_iter()
        .filter(|(k, _)| k != "index.json")
        .collect();
    entries.push((format!("blobs/sha256/{}", nested_d.digest()), nested));
    entries.push(("index.json".into(), top));
    let refs: Vec<(&str, &[u8])> = entries.iter().map(|(p, d)| (p.as_str(), &d[..])).collect();

    let imported = import_archive(&temp_store().store, &archive(&refs)[..]).unwrap();
    assert_eq!(
        imported,
        vec![ImportedImage {
            manifest_digest: image.manifest,
            config_digest: image.config,
            tags: vec!["docker.io/lab/multi:1".to_string()],
        }]
    );
}

#[test]
fn export_is_deterministic() {
    let src = temp_store();
    let image = store_image(&src.store, &small_layers());
    let (mut a, mut b) = (Vec::new(), Vec::new());
    export_docker_archive(&src.store, &export_image(&image), &mut a).unwrap();
    export_docker_archive(&src.store, &export_image(&image), &mut b).unwrap();
    assert_eq!(a, b);
}

#[test]
fn docker_legacy_save_is_compressed_on_import_with_diff_ids_checked() {
    // The base layer is listed twice: docker stores it once and symlinks it.
    let base = small_layers().remove(0);
    let layers = vec![base.clone(), small_layers().remove(1), base];
    let config = config_json(&layers);
    let tar = docker_legacy_archive(&layers, &config, &["lab/legacy:1"]);

    let dst = temp_store();
    let imported = import_archive(&dst.store, &tar[..]).unwrap();
    assert_eq!(imported.len(), 1);
    assert_eq!(imported[0].tags, vec!["lab/legacy:1".to_string()]);
    // The config is kept byte for byte: the image ID does not change.
    assert_eq!(imported[0].config_digest, sha256_digest(&config));
    assert_layers_are(&dst.store, &imported[0], &layers);
    assert_store_consistent(&dst);

    // Compression is deterministic: a second import gives the same manifest.
    let again = import_archive(&temp_store().store, &tar[..]).unwrap();
    assert_eq!(again[0].manifest_digest, imported[0].manifest_digest);
}

#[test]
fn docker_oci_shaped_save_with_uncompressed_layers_is_rewritten_to_gzip() {
    let layers = small_layers();
    let blobs: Vec<_> = layers.iter().map(|l| (l.clone(), TAR)).collect();
    let (tar, manifest_d) = oci_layout_archive(&blobs, &layers, Some("lab/modern:1"));

    let dst = temp_store();
    let imported = import_archive(&dst.store, &tar[..]).unwrap();
    assert_eq!(imported.len(), 1);
    assert_eq!(imported[0].tags, vec!["lab/modern:1".to_string()]);
    assert_ne!(
        imported[0].manifest_digest, manifest_d,
        "layers changed, so must the manifest"
    );
    assert_eq!(
        imported[0].config_digest,
        sha256_digest(&config_json(&layers))
    );
    assert_layers_are(&dst.store, &imported[0], &layers);
    // The uncompressed originals are not left in the store.
    for l in &layers {
        assert!(!dst.store.contains(&sha256_digest(l)));
    }
    assert_store_consistent(&dst);
}

#[test]
fn zstd_layers_are_recompressed_to_gzip() {
    let layers = small_layers();
    let blobs: Vec<_> = layers
        .iter()
        .map(|l| (zstd::encode_all(&l[..], 3).unwrap(), ZSTD))
        .collect();
    let (tar, manifest_d) = oci_layout_archive(&blobs, &layers, None);

    let dst = temp_store();
    let imported = import_archive(&dst.store, &tar[..]).unwrap();
    assert_eq!(imported[0].tags, vec!["docker.io/lab/oci:1".to_string()]);
    assert_ne!(imported[0].manifest_digest, manifest_d);
    assert_layers_are(&dst.store, &imported[0], &layers);
    assert_store_consistent(&dst);
}

#[test]
fn docker_archive_with_gzip_layer_files_keeps_them_verbatim() {
    // The shape go-containerregistry's tarball package writes.
    let layers = small_layers();
    let config = config_json(&layers);
    let gz: Vec<Vec<u8>> = layers.iter().map(|l| gzip(l)).collect();
    let names: Vec<String> = gz
        .iter()
        .map(|g| format!("{}.tar.gz", sha256_digest(g).digest()))
        .collect();
    let config_name = sha256_digest(&config).to_string();
    let manifest = serde_json::to_vec(
        &json!([{"Config": config_name, "RepoTags": ["lab/ggcr:1"], "Layers": names}]),
    )
    .unwrap();
    let tar = archive(&[
        (&names[0], &gz[0]),
        (&names[1], &gz[1]),
        (&config_name, &config),
        ("manifest.json", &manifest),
    ]);
    let dst = temp_store();
    let imported = import_archive(&dst.store, &tar[..]).unwrap();
    let manifest = manifest_of(&dst.store, &imported[0].manifest_digest);
    let stored: Vec<Digest> = manifest
        .layers()
        .iter()
        .map(|d| d.digest().clone())
        .collect();
    let want: Vec<Digest> = gz.iter().map(|g| sha256_digest(g)).collect();
    assert_eq!(stored, want);
    assert_layers_are(&dst.store, &imported[0], &layers);
}

#[test]
fn gzip_compressed_archive_imports() {
    let src = temp_store();
    let image = store_image(&src.store, &small_layers());
    let mut tar = Vec::new();
    export_docker_archive(&src.store, &export_image(&image), &mut tar).unwrap();
    let imported = import_archive(&temp_store().store, &gzip(&tar)[..]).unwrap();
    assert_eq!(imported[0].manifest_digest, image.manifest);
}

#[test]
fn oci_layout_directory_imports() {
    let src = temp_store();
    let image = store_image(&src.store, &small_layers());
    let mut tar = Vec::new();
    export_oci_archive(&src.store, &export_image(&image), &mut tar).unwrap();
    let dir = tempfile::tempdir().unwrap();
    tar::Archive::new(&tar[..]).unpack(dir.path()).unwrap();

    let dst = temp_store();
    let imported = import_oci_layout_dir(&dst.store, dir.path()).unwrap();
    assert_eq!(imported.len(), 1);
    assert_eq!(imported[0].manifest_digest, image.manifest);
    assert_eq!(imported[0].tags, vec![FULL_TAG.to_string()]);
    assert_layers_are(&dst.store, &imported[0], &small_layers());
    assert_store_consistent(&dst);
}

fn read_members(tar: &[u8]) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    for entry in tar::Archive::new(tar).entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.header().entry_type().is_file() {
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            out.insert(path, data);
        }
    }
    out
}
