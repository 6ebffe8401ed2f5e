//! Push and pull against a real distribution registry (`docker-registry`).

mod common;

use common::{Mode, Registry, build_image, build_index_blob, client, store};
use kiln_image::MediaFlavor;
use kiln_registry::{Client, Error, RegistryOptions};
use std::sync::{Arc, Mutex};

#[test]
fn push_then_pull_roundtrips_an_oci_image() {
    let registry = Registry::start(Mode::Plain);
    let (_src_dir, src) = store();
    let image = build_image(&src, "amd64", 50_000, MediaFlavor::Oci);
    let reference = registry.reference("kiln/hello:v1");

    let pushed = client("linux/amd64")
        .push(&src, &image.manifest, &reference)
        .unwrap();
    assert_eq!(pushed, image.manifest);

    let (_dst_dir, dst) = store();
    let pulled = client("linux/amd64").pull(&dst, &reference).unwrap();
    assert_eq!(pulled.manifest_digest, image.manifest);
    assert_eq!(pulled.config_digest, image.config);
    assert_eq!(pulled.index_digest, None);
    for d in [&image.manifest, &image.config, &image.layer] {
        dst.verify(d).unwrap();
    }
    let by_digest = reference.with_digest(image.manifest.clone());
    let (_again_dir, again) = store();
    let pulled = client("linux/amd64").pull(&again, &by_digest).unwrap();
    assert_eq!(pulled.manifest_digest, image.manifest);
}

#[test]
fn docker_schema2_images_roundtrip_and_repush_skips_existing_blobs() {
    let registry = Registry::start(Mode::Plain);
    let (_src_dir, src) = store();
    let image = build_image(&src, "amd64", 10_000, MediaFlavor::Docker);
    let reference = registry.reference("kiln/docker-flavor:latest");
    let c = client("linux/amd64");
    assert_eq!(
        c.push(&src, &image.manifest, &reference).unwrap(),
        image.manifest
    );
    // Second push: every blob HEADs as present; the manifest is re-put.
    assert_eq!(
        c.push(&src, &image.manifest, &reference).unwrap(),
        image.manifest
    );

    let (_dst_dir, dst) = store();
    let pulled = c.pull(&dst, &reference).unwrap();
    assert_eq!(pulled.manifest_digest, image.manifest);
    let manifest = String::from_utf8(dst.read_bytes(&image.manifest, 1 << 20).unwrap()).unwrap();
    assert!(manifest.contains("application/vnd.docker.distribution.manifest.v2+json"));
}

#[test]
fn large_blobs_are_uploaded_in_chunks() {
    let registry = Registry::start(Mode::Plain);
    let (_src_dir, src) = store();
    let image = build_image(&src, "amd64", 300_000, MediaFlavor::Oci);
    assert!(
        image.layer_size > 4 * 64 * 1024,
        "layer must span several chunks"
    );
    let reference = registry.reference("kiln/chunked:v1");
    let chunked = Client::new(RegistryOptions {
        chunk_size: 64 * 1024,
        ..common::options("linux/amd64")
    });
    chunked.push(&src, &image.manifest, &reference).unwrap();

    let (_dst_dir, dst) = store();
    let pulled = client("linux/amd64").pull(&dst, &reference).unwrap();
    assert_eq!(pulled.manifest_digest, image.manifest);
    dst.verify(&image.layer).unwrap();
}

#[test]
fn multi_platform_index_pull_picks_the_wanted_platform() {
    let registry = Registry::start(Mode::Plain);
    let (_src_dir, src) = store();
    let amd64 = build_image(&src, "amd64", 8_000, MediaFlavor::Oci);
    let arm64 = build_image(&src, "arm64", 9_000, MediaFlavor::Oci);
    let armv6 = build_image(&src, "arm", 7_000, MediaFlavor::Oci);
    let index = build_index_blob(
        &src,
        &[
            (&amd64, "linux/amd64"),
            (&arm64, "linux/arm64/v8"),
            (&armv6, "linux/arm/v6"),
        ],
    );
    let reference = registry.reference("kiln/multi:v1");
    let pushed = client("linux/amd64")
        .push(&src, &index, &reference)
        .unwrap();
    assert_eq!(pushed, index);

    for (platform, want) in [
        ("linux/amd64", &amd64),
        ("linux/arm64", &arm64),
        ("linux/aarch64/v8", &arm64),
        // No v7 entry: an armv7 host runs the armv6 image.
        ("linux/arm/v7", &armv6),
    ] {
        let (_dir, dst) = store();
        let pulled = client(platform).pull(&dst, &reference).unwrap();
        assert_eq!(pulled.manifest_digest, want.manifest, "{platform}");
        assert_eq!(pulled.index_digest.as_ref(), Some(&index), "{platform}");
        dst.verify(&want.layer).unwrap();
        for other in [&amd64, &arm64, &armv6] {
            if other.layer != want.layer {
                assert!(
                    !dst.contains(&other.layer),
                    "{platform} pulled a foreign layer"
                );
            }
        }
    }

    let (_dir, dst) = store();
    let err = client("linux/s390x").pull(&dst, &reference).unwrap_err();
    assert!(matches!(err, Error::NoMatchingPlatform { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("kiln/multi:v1") && msg.contains("linux/s390x"),
        "{msg}"
    );
    assert!(
        msg.contains("linux/arm64") && msg.contains("linux/arm/v6"),
        "{msg}"
    );
}

#[test]
fn single_platform_image_for_another_platform_is_refused_with_buildkit_wording() {
    let registry = Registry::start(Mode::Plain);
    let (_src_dir, src) = store();
    let image = build_image(&src, "amd64", 1_000, MediaFlavor::Oci);
    let reference = registry.reference("kiln/amd64-only:v1");
    client("linux/amd64")
        .push(&src, &image.manifest, &reference)
        .unwrap();

    let (_dir, dst) = store();
    let err = client("linux/arm64").pull(&dst, &reference).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "image with reference {reference} was found but does not match the specified platform: wanted linux/arm64, actual: linux/amd64"
        )
    );
    assert!(
        !dst.contains(&image.manifest),
        "no manifest stored for a refused image"
    );
}

#[test]
fn unknown_image_and_unreachable_registry_are_named_errors() {
    let registry = Registry::start(Mode::Plain);
    let (_dir, dst) = store();
    let missing = registry.reference("kiln/nope:v1");
    let err = client("linux/amd64").pull(&dst, &missing).unwrap_err();
    assert!(matches!(err, Error::ManifestUnknown { .. }), "{err}");
    assert!(err.to_string().contains(&missing.to_string()), "{err}");

    let closed = format!("127.0.0.1:{}/kiln/x:v1", common::free_port());
    let reference = kiln_image::Reference::parse(&closed).unwrap();
    let err = client("linux/amd64").pull(&dst, &reference).unwrap_err();
    assert!(matches!(err, Error::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains(&closed), "{err}");
}

/// A proxy in front of `registry` that records `METHOD path` of each request.
fn recording_proxy(registry: &Registry) -> (common::FakeServer, Arc<Mutex<Vec<String>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let (log2, upstream) = (log.clone(), registry.port);
    let proxy = common::FakeServer::start(move |req| {
        log2.lock()
            .unwrap()
            .push(format!("{} {}", req.method, req.path));
        common::Reply {
            bytes: common::forward(req, upstream),
            cut_at: None,
        }
    });
    (proxy, log)
}

#[test]
fn cross_repo_mount_is_tried_and_falls_back_to_upload_on_202() {
    let registry = Registry::start(Mode::Plain);
    let (proxy, log) = recording_proxy(&registry);
    let at = |repo_tag: &str| {
        kiln_image::Reference::parse(&format!("{}/{repo_tag}", proxy.host())).unwrap()
    };
    let (_src_dir, src) = store();
    let image = build_image(&src, "amd64", 20_000, MediaFlavor::Oci);
    let c = client("linux/amd64");
    c.push(&src, &image.manifest, &at("kiln/a:v1")).unwrap();

    log.lock().unwrap().clear();
    c.push(&src, &image.manifest, &at("kiln/b:v1")).unwrap();
    let requests = log.lock().unwrap().clone();
    let mounts = requests
        .iter()
        .filter(|r| {
            r.starts_with("POST /v2/kiln/b/blobs/uploads/?mount=") && r.ends_with("from=kiln/a")
        })
        .count();
    assert_eq!(mounts, 2, "config and layer mounted: {requests:?}");
    assert!(
        !requests
            .iter()
            .any(|r| r.starts_with("PUT /v2/kiln/b/blobs")),
        "{requests:?}"
    );

    // Unlink the layer from kiln/a: mounting it now answers 202, and the
    // client must upload into the session that reply opened.
    let url = format!("http://{}/v2/kiln/a/blobs/{}", registry.host(), image.layer);
    assert_eq!(ureq::delete(&url).call().unwrap().status(), 202);
    log.lock().unwrap().clear();
    c.push(&src, &image.manifest, &at("kiln/c:v1")).unwrap();
    let requests = log.lock().unwrap().clone();
    let layer_mount = format!("mount={}&from=kiln/a", image.layer);
    assert!(
        requests.iter().any(|r| r.contains(&layer_mount)),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("PUT /v2/kiln/c/blobs/uploads/")),
        "{requests:?}"
    );

    let (_dst_dir, dst) = store();
    let pulled = client("linux/amd64").pull(&dst, &at("kiln/c:v1")).unwrap();
    assert_eq!(pulled.manifest_digest, image.manifest);
    dst.verify(&image.layer).unwrap();
}

#[test]
fn docker_manifest_list_pull_picks_the_wanted_platform() {
    let registry = Registry::start(Mode::Plain);
    let (_src_dir, src) = store();
    let amd64 = build_image(&src, "amd64", 3_000, MediaFlavor::Docker);
    let arm64 = build_image(&src, "arm64", 3_500, MediaFlavor::Docker);
    let list = common::build_index_flavored(
        &src,
        &[(&amd64, "linux/amd64"), (&arm64, "linux/arm64")],
        MediaFlavor::Docker,
    );
    let text = String::from_utf8(src.read_bytes(&list, 1 << 20).unwrap()).unwrap();
    assert!(text.contains("manifest.list.v2+json"), "{text}");
    let reference = registry.reference("kiln/list:v1");
    client("linux/amd64").push(&src, &list, &reference).unwrap();

    let (_dir, dst) = store();
    let pulled = client("linux/arm64").pull(&dst, &reference).unwrap();
    assert_eq!(pulled.manifest_digest, arm64.manifest);
    assert_eq!(pulled.index_digest, Some(list));
}

#[test]
fn concurrent_pulls_of_one_image_share_each_blob_download() {
    let registry = Registry::start(Mode::Plain);
    let (proxy, log) = recording_proxy(&registry);
    let at = kiln_image::Reference::parse(&format!("{}/kiln/shared:v1", proxy.host())).unwrap();
    let (_src_dir, src) = store();
    // Big enough that the two pulls overlap while the layer streams.
    let image = build_image(&src, "amd64", 8 * 1024 * 1024, MediaFlavor::Oci);
    client("linux/amd64")
        .push(&src, &image.manifest, &at)
        .unwrap();
    log.lock().unwrap().clear();

    let (_dst_dir, dst) = store();
    std::thread::scope(|s| {
        let pulls: Vec<_> = (0..2)
            .map(|_| s.spawn(|| client("linux/amd64").pull(&dst, &at)))
            .collect();
        for pull in pulls {
            let pulled = pull.join().unwrap().unwrap();
            assert_eq!(pulled.manifest_digest, image.manifest);
        }
    });
    let layer_gets = log
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.starts_with("GET ") && r.ends_with(image.layer.digest()))
        .count();
    assert_eq!(
        layer_gets,
        1,
        "the layer is downloaded once: {:?}",
        log.lock().unwrap()
    );
    dst.verify(&image.layer).unwrap();
    assert!(
        !dst.root().join("locks").join(image.layer.digest()).exists(),
        "lock file removed after the download"
    );
}

#[test]
fn manifest_and_single_blobs_are_fetched_without_the_rest() {
    let registry = Registry::start(Mode::Plain);
    let (_src_dir, src) = store();
    let image = build_image(&src, "amd64", 20_000, MediaFlavor::Oci);
    let reference = registry.reference("kiln/lazy:v1");
    let c = client("linux/amd64");
    c.push(&src, &image.manifest, &reference).unwrap();

    let (_dst_dir, dst) = store();
    let (digest, bytes) = c.manifest(&reference).unwrap();
    assert_eq!(digest, image.manifest);
    assert_eq!(kiln_content::sha256_digest(&bytes), image.manifest);
    assert!(
        !dst.contains(&image.config),
        "a manifest fetch stores nothing"
    );
    let manifest = kiln_image::parse_manifest(&bytes).unwrap();
    let layer = &manifest.layers()[0];
    c.fetch_blob(&dst, &reference, layer).unwrap();
    dst.verify(&image.layer).unwrap();
    assert!(!dst.contains(&image.config), "only the blob asked for");

    let missing = registry.reference("kiln/lazy:nope");
    assert!(matches!(
        c.manifest(&missing),
        Err(Error::ManifestUnknown { .. })
    ));
}
