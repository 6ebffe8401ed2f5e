//! Canonical JSON, config round-trips, the layer builder and media types.

use std::collections::HashMap;

use kiln_image::media::{self, MediaFlavor};
use kiln_image::oci_spec::image::{Arch, MediaType, Os};
use kiln_image::{
    ImageBuilder, ImageConfig, LayerInfo, canonical_json, config_digest, convert_manifest,
    history_entry, parse_manifest, sha256_digest,
};
use serde_json::json;

#[test]
fn canonical_json_ignores_insertion_order() {
    let a = json!({"b": 1, "a": {"z": [{"y": 1, "x": 2}], "c": "d"}});
    let b = json!({"a": {"c": "d", "z": [{"x": 2, "y": 1}]}, "b": 1});
    let ca = canonical_json(&a).unwrap();
    assert_eq!(ca, canonical_json(&b).unwrap());
    assert_eq!(
        String::from_utf8(ca).unwrap(),
        r#"{"a":{"c":"d","z":[{"x":2,"y":1}]},"b":1}"#
    );
}

#[test]
fn label_insertion_order_does_not_change_image_id() {
    let mut x = ImageBuilder::scratch(Os::Linux, Arch::Amd64);
    let mut y = x.clone();
    let labels = [("k1", "v1"), ("k2", "v2"), ("k3", "v3"), ("k4", "v4")];
    x.config_mut().update_runtime(|c| {
        c.set_labels(Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>(),
        ));
    });
    y.config_mut().update_runtime(|c| {
        c.set_labels(Some(
            labels
                .iter()
                .rev()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>(),
        ));
    });
    assert_eq!(
        config_digest(x.config()).unwrap(),
        config_digest(y.config()).unwrap()
    );
}

fn docker_config_json() -> serde_json::Value {
    json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "docker_version": "24.0.7",
        "container_config": {"Hostname": "abc", "Cmd": ["/bin/sh"]},
        "config": {
            "Env": ["PATH=/usr/bin"],
            "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
            "Volumes": {"/data": {}},
            "WorkingDir": "/app",
            "User": "1000:1000",
            "Cmd": ["sh"],
            "Labels": {"a": "1"},
            "StopSignal": "SIGTERM",
            "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 30000000000i64, "Retries": 3},
            "OnBuild": ["RUN echo hi"],
            "Shell": ["/bin/bash", "-c"],
            "ArgsEscaped": true,
            "Hostname": ""
        },
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", "a".repeat(64))]},
        "history": [{"created_by": "ADD rootfs /", "created": "2024-01-01T00:00:00Z"}]
    })
}

#[test]
fn config_round_trip_keeps_docker_and_unknown_fields() {
    let original = docker_config_json();
    let config = ImageConfig::from_slice(&serde_json::to_vec(&original).unwrap()).unwrap();
    let health = config
        .docker
        .healthcheck
        .as_ref()
        .expect("healthcheck parsed");
    assert_eq!(health.retries, Some(3));
    assert_eq!(
        config.docker.shell.as_deref(),
        Some(&["/bin/bash".to_string(), "-c".to_string()][..])
    );
    assert_eq!(config.docker.args_escaped, Some(true));
    assert_eq!(config.extra.get("docker_version"), Some(&json!("24.0.7")));
    assert_eq!(config.labels().get("a").map(String::as_str), Some("1"));
    let (bytes, _) = config.to_blob().unwrap();
    let back: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(back, original);
}

#[test]
fn config_blob_is_canonical_and_digest_matches() {
    let config =
        ImageConfig::from_slice(&serde_json::to_vec(&docker_config_json()).unwrap()).unwrap();
    let (bytes, digest) = config.to_blob().unwrap();
    assert_eq!(digest, sha256_digest(&bytes));
    let reparsed = ImageConfig::from_slice(&bytes).unwrap();
    assert_eq!(reparsed.to_blob().unwrap().1, digest);
    assert!(!bytes.contains(&b'\n'));
    assert!(!bytes.windows(2).any(|w| w == b": " || w == b", "));
}

#[test]
fn invalid_configs_are_errors() {
    assert!(ImageConfig::from_slice(b"[]").is_err());
    assert!(ImageConfig::from_slice(b"{").is_err());
    assert!(ImageConfig::from_slice(br#"{"config": {"Cmd": 3}, "architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}"#).is_err());
}

fn layer(n: u8) -> LayerInfo {
    LayerInfo {
        digest: sha256_digest(&[n]),
        diff_id: sha256_digest(&[n, n]),
        size: 100 + u64::from(n),
        media_type: MediaType::ImageLayerGzip,
    }
}

#[test]
fn builder_keeps_layers_diff_ids_and_history_in_step() {
    let mut b = ImageBuilder::scratch(Os::Linux, Arch::Amd64);
    b.add_layer(layer(1), history_entry("COPY . / # buildkit", None, true));
    b.add_empty_layer(history_entry("ENV A=1", None, false));
    b.add_layer(layer(2), history_entry("RUN make # buildkit", None, false));
    let built = b.build(MediaFlavor::Oci).unwrap();
    assert_eq!(built.manifest.layers().len(), 2);
    let config = ImageConfig::from_slice(&built.config_bytes).unwrap();
    assert_eq!(
        config.oci.rootfs().diff_ids(),
        &vec![layer(1).diff_id.to_string(), layer(2).diff_id.to_string()]
    );
    let empties: Vec<_> = config.history().iter().map(|h| h.empty_layer()).collect();
    assert_eq!(empties, vec![None, Some(true), None]);
    assert_eq!(
        config.history()[0].comment().as_deref(),
        Some("buildkit.dockerfile.v0")
    );
    assert_eq!(
        built.config_descriptor.digest(),
        &sha256_digest(&built.config_bytes)
    );
    assert_eq!(
        built.manifest_descriptor.digest(),
        &sha256_digest(&built.manifest_bytes)
    );
    assert_eq!(
        parse_manifest(&built.manifest_bytes).unwrap(),
        built.manifest
    );
}

#[test]
fn builder_rejects_mismatched_base() {
    let base = ImageBuilder::scratch(Os::Linux, Arch::Amd64)
        .config()
        .clone();
    let layers = vec![kiln_image::descriptor_for(
        Some(MediaType::ImageLayerGzip),
        b"x",
    )];
    assert!(ImageBuilder::new(base, layers).is_err());
}

#[test]
fn docker_flavor_uses_v2_schema2_types_and_keeps_image_id() {
    let mut b = ImageBuilder::scratch(Os::Linux, Arch::Amd64);
    b.add_layer(layer(1), history_entry("COPY . /", None, false));
    let oci = b.build(MediaFlavor::Oci).unwrap();
    let docker = b.build(MediaFlavor::Docker).unwrap();
    assert_eq!(
        docker.manifest.media_type().as_ref().map(|m| m.to_string()),
        Some(media::DOCKER_MANIFEST.to_string())
    );
    assert_eq!(
        docker.config_descriptor.media_type().as_ref(),
        media::DOCKER_CONFIG
    );
    assert_eq!(
        docker.manifest.layers()[0].media_type().as_ref(),
        media::DOCKER_LAYER_GZIP
    );
    assert_eq!(
        docker.config_descriptor.digest(),
        oci.config_descriptor.digest()
    );
    assert_ne!(
        docker.manifest_descriptor.digest(),
        oci.manifest_descriptor.digest()
    );
    assert_eq!(
        convert_manifest(&docker.manifest, MediaFlavor::Oci),
        oci.manifest
    );
    assert_eq!(
        convert_manifest(&oci.manifest, MediaFlavor::Docker),
        docker.manifest
    );
}

#[test]
fn media_type_conversion_is_symmetric() {
    let oci = [
        MediaType::ImageManifest,
        MediaType::ImageIndex,
        MediaType::ImageConfig,
        MediaType::ImageLayerGzip,
        MediaType::ImageLayer,
        MediaType::ImageLayerZstd,
    ];
    for m in oci {
        let d = media::convert(&m, MediaFlavor::Docker);
        assert_eq!(media::flavor_of(&d), Some(MediaFlavor::Docker), "{m}");
        assert_eq!(media::convert(&d, MediaFlavor::Oci), m);
    }
    assert!(media::is_layer(&MediaType::Other(
        media::DOCKER_LAYER_GZIP.into()
    )));
    assert!(media::is_manifest(&MediaType::Other(
        media::DOCKER_MANIFEST.into()
    )));
    assert!(media::is_index(&MediaType::ImageIndex));
    let other = MediaType::Other("application/x-foo".into());
    assert_eq!(media::convert(&other, MediaFlavor::Docker), other);
    assert_eq!(media::flavor_of(&other), None);
}

#[test]
fn docker_fields_without_oci_config_create_the_section() {
    let mut config = ImageBuilder::scratch(Os::Linux, Arch::ARM64)
        .config()
        .clone();
    config.docker.shell = Some(vec!["/bin/ash".into(), "-c".into()]);
    config.update_runtime(|c| {
        c.set_working_dir(Some("/w".into()));
    });
    let (bytes, _) = config.to_blob().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["config"]["Shell"], json!(["/bin/ash", "-c"]));
    assert_eq!(v["config"]["WorkingDir"], json!("/w"));
    assert_eq!(v["architecture"], json!("arm64"));
    assert_eq!(ImageConfig::from_slice(&bytes).unwrap(), config);
}
