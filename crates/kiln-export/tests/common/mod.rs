//! Test images built from scratch: layer tars written with `tar`, gzip with
//! `flate2`, config and manifest JSON written here.
// Each test binary uses a subset of these helpers.
#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Output};

use flate2::Compression;
use flate2::write::GzEncoder;
use kiln_content::{ContentStore, Digest, sha256_digest};
use serde_json::json;

/// A store in a temp dir that lives as long as the value.
pub struct TempStore {
    pub dir: tempfile::TempDir,
    pub store: ContentStore,
}

pub fn temp_store() -> TempStore {
    let dir = tempfile::tempdir().unwrap();
    let store = ContentStore::open(dir.path().join("store")).unwrap();
    TempStore { dir, store }
}

/// A file, directory or symlink to put in a layer.
pub enum Item<'a> {
    File(&'a str, &'a [u8], u32),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
}

/// An uncompressed layer tar with deterministic headers.
pub fn layer_tar(items: &[Item<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for item in items {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        match item {
            Item::File(path, data, mode) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, path, *data).unwrap();
            }
            Item::Dir(path) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, path, std::io::empty()).unwrap();
            }
            Item::Symlink(path, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, path, target).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// Two small layers: a base with a directory and files, and one on top.
pub fn small_layers() -> Vec<Vec<u8>> {
    vec![
        layer_tar(&[
            Item::Dir("etc/"),
            Item::File("etc/hostname", b"kiln\n", 0o644),
            Item::File("hello.txt", b"hello from the base layer\n", 0o644),
        ]),
        layer_tar(&[Item::File("app/run.sh", b"#!/bin/sh\necho hi\n", 0o755)]),
    ]
}

/// One layer holding the host's static busybox as `/bin/busybox`.
pub fn busybox_layer() -> Vec<u8> {
    let busybox = std::fs::read("/bin/busybox")
        .expect("/bin/busybox (Debian package busybox-static) is required");
    layer_tar(&[
        Item::Dir("bin/"),
        Item::File("bin/busybox", &busybox, 0o755),
        Item::Symlink("bin/sh", "busybox"),
        Item::Dir("tmp/"),
    ])
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// Config JSON for `layers` (uncompressed tars).
pub fn config_json(layers: &[Vec<u8>]) -> Vec<u8> {
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| sha256_digest(l).to_string())
        .collect();
    let history: Vec<_> = layers
        .iter()
        .enumerate()
        .map(
            |(i, _)| json!({"created": "2024-01-01T00:00:00Z", "created_by": format!("layer {i}")}),
        )
        .collect();
    serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/busybox", "sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }))
    .unwrap()
}

/// An image as the store keeps it.
pub struct StoredImage {
    pub manifest: Digest,
    pub config: Digest,
    /// Gzip layer blobs, base first.
    pub layer_blobs: Vec<Digest>,
    pub diff_ids: Vec<Digest>,
}

/// Media types of a manifest, its config and gzip layers.
#[derive(Clone, Copy)]
pub struct Flavor {
    manifest: &'static str,
    config: &'static str,
    layer: &'static str,
}

pub const OCI: Flavor = Flavor {
    manifest: "application/vnd.oci.image.manifest.v1+json",
    config: "application/vnd.oci.image.config.v1+json",
    layer: "application/vnd.oci.image.layer.v1.tar+gzip",
};

/// Docker v2 schema 2, as `docker push` and older pulls store images.
pub const DOCKER_V2S2: Flavor = Flavor {
    manifest: "application/vnd.docker.distribution.manifest.v2+json",
    config: "application/vnd.docker.container.image.v1+json",
    layer: "application/vnd.docker.image.rootfs.diff.tar.gzip",
};

/// Writes an OCI manifest with gzip layers, its config and layers to `store`.
pub fn store_image(store: &ContentStore, layers: &[Vec<u8>]) -> StoredImage {
    store_image_as(store, layers, OCI)
}

/// Writes a manifest of `flavor` with gzip layers, its config and layers.
pub fn store_image_as(store: &ContentStore, layers: &[Vec<u8>], flavor: Flavor) -> StoredImage {
    let config = config_json(layers);
    let config_digest = store.write_bytes(&config).unwrap();
    let mut descriptors = Vec::new();
    let mut layer_blobs = Vec::new();
    for layer in layers {
        let gz = gzip(layer);
        let d = store.write_bytes(&gz).unwrap();
        descriptors
            .push(json!({"mediaType": flavor.layer, "digest": d.to_string(), "size": gz.len()}));
        layer_blobs.push(d);
    }
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": flavor.manifest,
        "config": {"mediaType": flavor.config, "digest": config_digest.to_string(), "size": config.len()},
        "layers": descriptors,
    }))
    .unwrap();
    StoredImage {
        manifest: store.write_bytes(&manifest).unwrap(),
        config: config_digest,
        layer_blobs,
        diff_ids: layers.iter().map(|l| sha256_digest(l)).collect(),
    }
}

/// Builds a tar archive from (path, bytes) members.
pub fn archive(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in members {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, path, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// A docker 20.10 `docker save` archive: `<id>/layer.tar` (uncompressed),
/// `<config hex>.json`, `manifest.json` and `repositories`. A layer listed
/// twice is stored once and symlinked, as docker does.
pub fn docker_legacy_archive(layers: &[Vec<u8>], config: &[u8], tags: &[&str]) -> Vec<u8> {
    let config_name = format!("{}.json", sha256_digest(config).digest());
    let mut b = tar::Builder::new(Vec::new());
    let mut paths = Vec::new();
    let mut first_path: std::collections::HashMap<Digest, String> = Default::default();
    for (i, layer) in layers.iter().enumerate() {
        let id = format!("{:064x}", i + 1);
        let path = format!("{id}/layer.tar");
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        match first_path.get(&sha256_digest(layer)) {
            Some(existing) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                b.append_link(&mut h, &path, format!("../{existing}"))
                    .unwrap();
            }
            None => {
                h.set_size(layer.len() as u64);
                b.append_data(&mut h, &path, &layer[..]).unwrap();
                first_path.insert(sha256_digest(layer), path.clone());
            }
        }
        paths.push(path);
    }
    let manifest =
        serde_json::to_vec(&json!([{"Config": config_name, "RepoTags": tags, "Layers": paths}]))
            .unwrap();
    for (path, data) in [
        (config_name.as_str(), config),
        ("manifest.json", &manifest[..]),
        ("repositories", b"{}"),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, path, data).unwrap();
    }
    b.into_inner().unwrap()
}

/// Runs a command, failing the test with its output if it fails.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (is the tool installed?)"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Fails loudly when a required external tool is missing.
pub fn require_tool(name: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "required tool `{name}` is not installed; this test cannot run without it"
    );
}

/// Every blob in the store is intact and the ingest area holds no leftovers.
pub fn assert_store_consistent(t: &TempStore) {
    for d in t.store.list().unwrap() {
        t.store.verify(&d).unwrap();
    }
    let ingest = t.dir.path().join("store/ingest");
    let leftovers: Vec<_> = std::fs::read_dir(ingest).unwrap().collect();
    assert!(
        leftovers.is_empty(),
        "temp files left in ingest/: {leftovers:?}"
    );
}

pub const TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// An OCI image layout tar of one image whose layer blobs are `blobs`
/// (content, media type) and whose config lists the diff IDs of `tars`,
/// named `docker.io/lab/oci:1`. With `repo_tag`, a docker 25+ style
/// `manifest.json` is added. Returns the archive and the manifest digest.
pub fn oci_layout_archive(
    blobs: &[(Vec<u8>, &str)],
    tars: &[Vec<u8>],
    repo_tag: Option<&str>,
) -> (Vec<u8>, Digest) {
    let config = config_json(tars);
    let config_d = sha256_digest(&config);
    let path = |d: &Digest| format!("blobs/sha256/{}", d.digest());
    let layer_descs: Vec<_> = blobs
        .iter()
        .map(|(b, media)| json!({"mediaType": media, "digest": sha256_digest(b).to_string(), "size": b.len()}))
        .collect();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_d.to_string(), "size": config.len()},
        "layers": layer_descs,
    }))
    .unwrap();
    let manifest_d = sha256_digest(&manifest);
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_d.to_string(),
            "size": manifest.len(),
            "annotations": {"io.containerd.image.name": "docker.io/lab/oci:1", "org.opencontainers.image.ref.name": "1"},
        }],
    }))
    .unwrap();
    let mut members: Vec<(String, Vec<u8>)> = blobs
        .iter()
        .map(|(b, _)| (path(&sha256_digest(b)), b.clone()))
        .collect();
    members.push((path(&config_d), config));
    members.push((path(&manifest_d), manifest));
    members.push(("index.json".into(), index));
    members.push((
        "oci-layout".into(),
        br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
    ));
    if let Some(tag) = repo_tag {
        let entry = json!([{
            "Config": path(&config_d),
            "RepoTags": [tag],
            "Layers": blobs.iter().map(|(b, _)| path(&sha256_digest(b))).collect::<Vec<_>>(),
        }]);
        members.push(("manifest.json".into(), serde_json::to_vec(&entry).unwrap()));
    }
    let refs: Vec<(&str, &[u8])> = members.iter().map(|(p, d)| (p.as_str(), &d[..])).collect();
    (archive(&refs), manifest_d)
}
