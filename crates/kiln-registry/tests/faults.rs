//! Faults a well-behaved registry never makes, staged with a scripted
//! server (alone, or as a proxy in front of a real registry).

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{
    FakeServer, Mode, Registry, Reply, Request, TestImage, blob_path, build_image, client, forward,
    store,
};
use kiln_content::ContentStore;
use kiln_image::{MediaFlavor, Reference};
use kiln_registry::Error;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Path → (content type, bytes) for a fake registry serving one image.
type Files = HashMap<String, (String, Vec<u8>)>;

fn files_for(src: &ContentStore, image: &TestImage, repo: &str, tag: &str) -> Files {
    let read = |d| src.read_bytes(d, 1 << 24).unwrap();
    let mut files = Files::new();
    let manifest = read(&image.manifest);
    files.insert(
        format!("/v2/{repo}/manifests/{tag}"),
        (OCI_MANIFEST.into(), manifest.clone()),
    );
    files.insert(
        format!("/v2/{repo}/manifests/{}", image.manifest),
        (OCI_MANIFEST.into(), manifest),
    );
    for d in [&image.config, &image.layer] {
        files.insert(
            blob_path(repo, d),
            ("application/octet-stream".into(), read(d)),
        );
    }
    files
}

/// Answers GET/HEAD from `files`, 404 otherwise, `/v2/` with 200.
fn serve_file(files: &Files, req: &Request) -> Reply {
    if req.path == "/v2/" {
        return Reply::json(200, "{}");
    }
    match files.get(&req.path) {
        Some((ctype, body)) => Reply::new(
            200,
            &[("Content-Type", ctype.clone())],
            body,
            req.method == "HEAD",
        ),
        None => Reply::json(
            404,
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"nope"}]}"#,
        ),
    }
}

fn reference(server: &FakeServer, repo_tag: &str) -> Reference {
    Reference::parse(&format!("{}/{repo_tag}", server.host())).unwrap()
}

fn ingest_is_empty(store: &ContentStore) -> bool {
    std::fs::read_dir(store.root().join("ingest"))
        .unwrap()
        .next()
        .is_none()
}

#[test]
fn blob_with_wrong_content_is_a_clear_error_and_nothing_is_committed() {
    let (_src_dir, src) = store();
    let image = build_image(&src, "amd64", 20_000, MediaFlavor::Oci);
    let mut files = files_for(&src, &image, "kiln/bad", "v1");
    let layer = files.get_mut(&blob_path("kiln/bad", &image.layer)).unwrap();
    let mid = layer.1.len() / 2;
    layer.1[mid] ^= 0xff;
    let server = FakeServer::start(move |req| serve_file(&files, req));

    let (_dir, dst) = store();
    let reference = reference(&server, "kiln/bad:v1");
    let err = client("linux/amd64").pull(&dst, &reference).unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("kiln/bad:v1") && msg.contains(image.layer.as_ref()),
        "{msg}"
    );
    assert!(!dst.contains(&image.layer), "corrupt layer was committed");
    assert!(
        !dst.contains(&image.manifest),
        "manifest committed despite a bad layer"
    );
    assert!(ingest_is_empty(&dst), "temp files left behind");
}

#[test]
fn oversized_blob_is_refused_without_reading_it_all() {
    let (_src_dir, src) = store();
    let image = build_image(&src, "amd64", 5_000, MediaFlavor::Oci);
    let mut files = files_for(&src, &image, "kiln/big", "v1");
    let layer = files.get_mut(&blob_path("kiln/big", &image.layer)).unwrap();
    layer.1.extend_from_slice(&[0; 4096]);
    let server = FakeServer::start(move |req| serve_file(&files, req));

    let (_dir, dst) = store();
    let err = client("linux/amd64")
        .pull(&dst, &reference(&server, "kiln/big:v1"))
        .unwrap_err();
    assert!(matches!(err, Error::SizeMismatch { .. }), "{err}");
    assert!(!dst.contains(&image.layer));
    assert!(ingest_is_empty(&dst));
}

#[test]
fn dropped_connection_mid_blob_resumes_with_range_through_a_proxy() {
    let registry = Registry::start(Mode::Plain);
    let (_src_dir, src) = store();
    let image = build_image(&src, "amd64", 400_000, MediaFlavor::Oci);
    client("linux/amd64")
        .push(&src, &image.manifest, &registry.reference("kiln/flaky:v1"))
        .unwrap();

    let layer_path = blob_path("kiln/flaky", &image.layer);
    let cuts = Arc::new(AtomicUsize::new(0));
    let ranges = Arc::new(Mutex::new(Vec::new()));
    let (upstream, cuts2, ranges2) = (registry.port, cuts.clone(), ranges.clone());
    let proxy = FakeServer::start(move |req| {
        let mut reply = Reply {
            bytes: forward(req, upstream),
            cut_at: None,
        };
        if req.method == "GET" && req.path == layer_path {
            if let Some(range) = req.header("range") {
                ranges2.lock().unwrap().push(range.to_string());
            }
            // Cut the first two downloads of the layer part-way through.
            if cuts2.fetch_add(1, Ordering::SeqCst) < 2 {
                reply.cut_at = Some(reply.bytes.len() / 3);
            }
        }
        reply
    });

    let (_dir, dst) = store();
    let pulled = client("linux/amd64")
        .pull(&dst, &reference(&proxy, "kiln/flaky:v1"))
        .unwrap();
    assert_eq!(pulled.manifest_digest, image.manifest);
    dst.verify(&image.layer).unwrap();
    assert_eq!(
        cuts.load(Ordering::SeqCst),
        3,
        "two cut downloads, one completion"
    );
    let ranges = ranges.lock().unwrap();
    assert_eq!(
        ranges.len(),
        2,
        "both retries resumed with Range: {ranges:?}"
    );
    assert!(
        ranges
            .iter()
            .all(|r| r.starts_with("bytes=") && !r.starts_with("bytes=0-"))
    );
}

#[test]
fn server_ignoring_range_makes_the_download_restart_cleanly() {
    let (_src_dir, src) = store();
    let image = build_image(&src, "amd64", 100_000, MediaFlavor::Oci);
    let files = files_for(&src, &image, "kiln/norange", "v1");
    let layer_path = blob_path("kiln/norange", &image.layer);
    let hits = Arc::new(AtomicUsize::new(0));
    let hits2 = hits.clone();
    let server = FakeServer::start(move |req| {
        let mut reply = serve_file(&files, req);
        if req.path == layer_path && hits2.fetch_add(1, Ordering::SeqCst) == 0 {
            reply.cut_at = Some(reply.bytes.len() / 2);
        }
        reply
    });
    let (_dir, dst) = store();
    client("linux/amd64")
        .pull(&dst, &reference(&server, "kiln/norange:v1"))
        .unwrap();
    dst.verify(&image.layer).unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    assert!(ingest_is_empty(&dst));
}

#[test]
fn too_many_requests_waits_for_retry_after_then_succeeds() {
    let (_src_dir, src) = store();
    let image = build_image(&src, "amd64", 1_000, MediaFlavor::Oci);
    let files = files_for(&src, &image, "kiln/busy", "v1");
    let limited = Arc::new(AtomicUsize::new(0));
    let limited2 = limited.clone();
    let server = FakeServer::start(move |req| {
        if req.path.contains("/manifests/") && limited2.fetch_add(1, Ordering::SeqCst) == 0 {
            let mut r = Reply::new(429, &[("Retry-After", "1".into())], b"slow down", false);
            r.cut_at = None;
            return r;
        }
        serve_file(&files, req)
    });
    let (_dir, dst) = store();
    let started = Instant::now();
    let pulled = client("linux/amd64")
        .pull(&dst, &reference(&server, "kiln/busy:v1"))
        .unwrap();
    assert_eq!(pulled.manifest_digest, image.manifest);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After ignored"
    );
}

#[test]
fn long_retry_after_gives_a_rate_limit_error_at_once() {
    let server = FakeServer::start(|req| {
        if req.path == "/v2/" {
            return Reply::json(200, "{}");
        }
        Reply::new(429, &[("Retry-After", "3600".into())], b"", false)
    });
    let (_dir, dst) = store();
    let started = Instant::now();
    let err = client("linux/amd64")
        .pull(&dst, &reference(&server, "kiln/limited:v1"))
        .unwrap_err();
    assert!(matches!(err, Error::RateLimited { .. }), "{err}");
    assert!(err.to_string().contains("kiln/limited:v1"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn schema1_manifests_are_refused_by_name() {
    let server = FakeServer::start(|req| {
        if req.path == "/v2/" {
            return Reply::json(200, "{}");
        }
        let body = r#"{"schemaVersion":1,"name":"kiln/old","tag":"v1","fsLayers":[]}"#;
        Reply::new(
            200,
            &[(
                "Content-Type",
                "application/vnd.docker.distribution.manifest.v1+prettyjws".into(),
            )],
            body.as_bytes(),
            false,
        )
    });
    let (_dir, dst) = store();
    let err = client("linux/amd64")
        .pull(&dst, &reference(&server, "kiln/old:v1"))
        .unwrap_err();
    assert!(matches!(err, Error::Schema1 { .. }), "{err}");
    assert!(err.to_string().contains("schema 1"), "{err}");
}

#[test]
fn manifest_not_matching_the_pinned_digest_is_refused() {
    let (_src_dir, src) = store();
    let image = build_image(&src, "amd64", 1_000, MediaFlavor::Oci);
    let other = build_image(&src, "arm64", 1_000, MediaFlavor::Oci);
    let mut files = files_for(&src, &image, "kiln/pin", "v1");
    // Serve `other`'s manifest under `image`'s digest.
    let wrong = src.read_bytes(&other.manifest, 1 << 20).unwrap();
    files.insert(
        format!("/v2/kiln/pin/manifests/{}", image.manifest),
        (OCI_MANIFEST.into(), wrong),
    );
    let server = FakeServer::start(move |req| serve_file(&files, req));
    let pinned = reference(&server, "kiln/pin:v1").with_digest(image.manifest.clone());
    let (_dir, dst) = store();
    let err = client("linux/amd64").pull(&dst, &pinned).unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(!dst.contains(&other.manifest));
}

#[test]
fn dropped_connection_mid_upload_restarts_the_blob_upload() {
    let registry = Registry::start(Mode::Plain);
    let (_src_dir, src) = store();
    let image = build_image(&src, "amd64", 50_000, MediaFlavor::Oci);
    let upstream = registry.port;
    let dropped = Arc::new(AtomicUsize::new(0));
    let dropped2 = dropped.clone();
    let proxy = FakeServer::start(move |req| {
        // Swallow the first upload PUT that carries a body: the registry
        // never sees it and the client sees the connection close.
        let layer_upload =
            req.method == "PUT" && req.path.contains("/blobs/uploads/") && req.body.len() > 1000;
        if layer_upload && dropped2.fetch_add(1, Ordering::SeqCst) == 0 {
            return Reply {
                bytes: Vec::new(),
                cut_at: Some(0),
            };
        }
        Reply {
            bytes: forward(req, upstream),
            cut_at: None,
        }
    });
    let reference = reference(&proxy, "kiln/upload-drop:v1");
    let pushed = client("linux/amd64")
        .push(&src, &image.manifest, &reference)
        .unwrap();
    assert_eq!(pushed, image.manifest);
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        2,
        "dropped once, then uploaded"
    );

    let (_dir, dst) = store();
    client("linux/amd64")
        .pull(&dst, &registry.reference("kiln/upload-drop:v1"))
        .unwrap();
    dst.verify(&image.layer).unwrap();
}
