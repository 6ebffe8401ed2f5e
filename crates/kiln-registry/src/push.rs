//! Pushing: blobs the registry lacks (mounted from a sibling repository when
//! one is known to hold them, else uploaded in one PUT or in chunks), then
//! child manifests by digest, then the top manifest by tag.

use kiln_content::{ContentStore, Digest};
use kiln_image::oci_spec::image::MediaType;
use kiln_image::{Reference, parse_index, parse_manifest};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::pull::{Kind, MAX_MANIFEST, classify};
use crate::transport::{Body, MAX_ATTEMPTS, Req, Session, backoff, error_message};
use crate::{Client, blob};

pub(crate) fn push(
    client: &Client,
    session: &Session,
    content: &ContentStore,
    manifest_digest: &Digest,
    reference: &Reference,
) -> Result<Digest> {
    let by = match (reference.tag(), reference.digest()) {
        (Some(tag), _) => tag.to_string(),
        (None, Some(d)) => d.to_string(),
        (None, None) => kiln_image::DEFAULT_TAG.to_string(),
    };
    push_manifest(client, session, content, manifest_digest, &by)
}

/// Pushes everything `digest` refers to, then the document itself as `by`.
fn push_manifest(
    client: &Client,
    session: &Session,
    content: &ContentStore,
    digest: &Digest,
    by: &str,
) -> Result<Digest> {
    let bytes = content
        .read_bytes(digest, MAX_MANIFEST)
        .map_err(|e| session.target.content(e))?;
    match classify(session, "", &bytes)? {
        Kind::Manifest => {
            let manifest = parse_manifest(&bytes).map_err(|e| session.target.invalid(e))?;
            let blobs = blob::unique(
                std::iter::once(manifest.config().clone()).chain(manifest.layers().iter().cloned()),
            );
            blob::for_each_parallel(&blobs, client.opts.parallelism, |d| {
                push_blob(client, session, content, d.digest())
            })?;
        }
        Kind::Index => {
            let index = parse_index(&bytes).map_err(|e| session.target.invalid(e))?;
            for child in index.manifests() {
                let child_digest = child.digest().to_string();
                push_manifest(client, session, content, child.digest(), &child_digest)?;
            }
        }
    }
    put_manifest(session, &bytes, digest, by)
}

/// `PUT manifests/<by>` with the document's own media type; checks the
/// digest the registry reports.
fn put_manifest(session: &Session, bytes: &[u8], digest: &Digest, by: &str) -> Result<Digest> {
    let req = Req::new("PUT", session.url(&format!("manifests/{by}")))
        .header("Content-Type", media_type_of(bytes))
        .body(Body::Bytes(bytes))
        .retryable();
    let resp = session.send(&req)?;
    if resp.status() != 201 && resp.status() != 200 {
        let status = resp.status();
        let request = format!("PUT manifests/{by}");
        return Err(session
            .target
            .protocol(request, status, error_message(resp)));
    }
    let stored = resp
        .header("docker-content-digest")
        .and_then(|d| d.trim().parse::<Digest>().ok());
    match stored {
        Some(d) if &d != digest => Err(session.target.mismatch(digest.clone(), d)),
        _ => Ok(digest.clone()),
    }
}

fn media_type_of(bytes: &[u8]) -> String {
    let doc: Option<Value> = serde_json::from_slice(bytes).ok();
    doc.as_ref()
        .and_then(|d| d.get("mediaType"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| MediaType::ImageManifest.to_string())
}

/// Makes sure the registry has `digest` in this repository. A connection
/// dropped mid-upload loses the upload session, so the whole blob starts
/// again (after checking whether the registry got it after all).
fn push_blob(
    client: &Client,
    session: &Session,
    content: &ContentStore,
    digest: &Digest,
) -> Result<()> {
    let mut failures = 0;
    loop {
        match push_blob_once(client, session, content, digest) {
            Err(Error::Unreachable { .. }) if failures + 1 < MAX_ATTEMPTS => {
                failures += 1;
                tracing::debug!(%digest, failures, "blob upload dropped; starting again");
                std::thread::sleep(backoff(failures));
            }
            Err(e) => return Err(e),
            Ok(()) => break,
        }
    }
    client.record_source(digest, &session.target.registry, &session.repo);
    Ok(())
}

fn push_blob_once(
    client: &Client,
    session: &Session,
    content: &ContentStore,
    digest: &Digest,
) -> Result<()> {
    if blob_exists(session, digest)? {
        return Ok(());
    }
    match start_upload(client, session, digest)? {
        Some(location) => upload(client, session, content, digest, location),
        None => Ok(()),
    }
}

/// `HEAD blobs/<digest>`: 200 means already there.
fn blob_exists(session: &Session, digest: &Digest) -> Result<bool> {
    let resp = session.send(&Req::new("HEAD", session.url(&format!("blobs/{digest}"))))?;
    match resp.status() {
        200 => Ok(true),
        404 => Ok(false),
        status => {
            Err(session
                .target
                .protocol(format!("HEAD blobs/{digest}"), status, String::new()))
        }
    }
}

/// Opens an upload session, trying a cross-repository mount first when a
/// sibling repository is known to hold the blob. `None` means mounted.
fn start_upload(client: &Client, session: &Session, digest: &Digest) -> Result<Option<String>> {
    let host = &session.target.registry;
    let (req, session) = match client.mount_source(digest, host, &session.repo) {
        Some(from) => {
            let url = session.url(&format!("blobs/uploads/?mount={digest}&from={from}"));
            let mount_session = session.with_scope(format!("repository:{from}:pull"));
            (Req::new("POST", url), mount_session)
        }
        None => (
            Req::new("POST", session.url("blobs/uploads/")),
            session.clone(),
        ),
    };
    let resp = session.send(&req)?;
    match resp.status() {
        201 => {
            tracing::debug!(%digest, "blob mounted from another repository");
            Ok(None)
        }
        202 => location(&session, resp, "POST blobs/uploads/").map(Some),
        status => {
            Err(session
                .target
                .protocol("POST blobs/uploads/".into(), status, error_message(resp)))
        }
    }
}

fn location(session: &Session, resp: ureq::Response, request: &str) -> Result<String> {
    match resp.header("location") {
        Some(loc) => Ok(session.resolve(loc)),
        None => Err(session
            .target
            .invalid(format!("{request}: reply has no Location"))),
    }
}

/// Uploads the blob: one PUT when small, else PATCH chunks and a final PUT.
fn upload(
    client: &Client,
    session: &Session,
    content: &ContentStore,
    digest: &Digest,
    mut location: String,
) -> Result<()> {
    let size = content
        .size(digest)
        .map_err(|e| session.target.content(e))?;
    let chunk = client.opts.chunk_size.max(1);
    let mut final_body = Body::Blob {
        content,
        digest,
        offset: 0,
        len: size,
    };
    if size > chunk {
        let mut offset = 0;
        while offset < size {
            let len = chunk.min(size - offset);
            location = patch_chunk(session, content, digest, &location, offset, len)?;
            offset += len;
        }
        final_body = Body::Empty;
    }
    let sep = if location.contains('?') { '&' } else { '?' };
    let req = Req::new("PUT", format!("{location}{sep}digest={digest}"))
        .header("Content-Type", "application/octet-stream")
        .body(final_body);
    let resp = session.send(&req)?;
    match resp.status() {
        201 | 204 => Ok(()),
        status => {
            Err(session
                .target
                .protocol(format!("PUT blob {digest}"), status, error_message(resp)))
        }
    }
}

/// `PATCH` one chunk; returns the next upload location.
fn patch_chunk(
    session: &Session,
    content: &ContentStore,
    digest: &Digest,
    location: &str,
    offset: u64,
    len: u64,
) -> Result<String> {
    let req = Req::new("PATCH", location.to_string())
        .header("Content-Type", "application/octet-stream")
        .header("Content-Range", format!("{offset}-{}", offset + len - 1))
        .body(Body::Blob {
            content,
            digest,
            offset,
            len,
        });
    let resp = session.send(&req)?;
    match resp.status() {
        202 => location_or(session, resp, location),
        status => Err(session.target.protocol(
            format!("PATCH blob {digest}"),
            status,
            error_message(resp),
        )),
    }
}

/// A chunk reply's `Location`, or the current one if it sent none.
fn location_or(session: &Session, resp: ureq::Response, current: &str) -> Result<String> {
    Ok(resp
        .header("location")
        .map(|l| session.resolve(l))
        .unwrap_or_else(|| current.to_string()))
}
