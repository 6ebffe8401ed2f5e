//! Pulling: resolve the tag to a manifest (choosing from a manifest list by
//! platform), then fetch config and layers. Manifests are stored last, so a
//! failed pull never leaves an image whose blobs are missing.

use std::io::Read;

use kiln_content::{ContentStore, Digest, sha256_digest};
use kiln_image::media::{is_index, is_manifest};
use kiln_image::oci_spec::image::{Descriptor, MediaType};
use kiln_image::{Reference, parse_index, parse_manifest};
use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::transport::{Req, Session, error_message};
use crate::{Client, Platform, Pulled, blob};

/// Largest manifest or index accepted (containerd's limit).
pub(crate) const MAX_MANIFEST: u64 = 4 * 1024 * 1024;

/// Every manifest type kiln understands; schema 1 is deliberately absent.
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// What a manifest document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Index,
    Manifest,
}

/// A verified manifest or index as fetched.
struct Fetched {
    bytes: Vec<u8>,
    digest: Digest,
    kind: Kind,
}

pub(crate) fn pull(
    client: &Client,
    session: &Session,
    content: &ContentStore,
    reference: &Reference,
) -> Result<Pulled> {
    let wanted = &client.opts.platform;
    let top = fetch_manifest(session, &manifest_ref(reference), reference.digest())?;
    let (index, image) = match top.kind {
        Kind::Manifest => (None, top),
        Kind::Index => {
            let chosen = choose(session, &top.bytes, wanted)?;
            let image = fetch_manifest(session, chosen.as_ref(), Some(&chosen))?;
            if image.kind != Kind::Manifest {
                return Err(session
                    .target
                    .invalid("index entry is not an image manifest"));
            }
            (Some(top), image)
        }
    };
    let manifest = parse_manifest(&image.bytes).map_err(|e| session.target.invalid(e))?;
    // The config comes first: a single-platform image for the wrong
    // platform is refused before any layer is downloaded.
    blob::fetch(session, content, manifest.config())?;
    if index.is_none() {
        check_platform(session, content, manifest.config().digest(), wanted)?;
    }
    let layers = blob::unique(manifest.layers().iter().cloned());
    blob::for_each_parallel(&layers, client.opts.parallelism, |layer| {
        blob::fetch(session, content, layer)
    })?;
    for desc in manifest.layers().iter().chain([manifest.config()]) {
        client.record_source(desc.digest(), &session.target.registry, &session.repo);
    }
    store(session, content, &image)?;
    if let Some(index) = &index {
        store(session, content, index)?;
    }
    Ok(Pulled {
        reference: reference.clone(),
        manifest_digest: image.digest,
        config_digest: manifest.config().digest().clone(),
        index_digest: index.map(|i| i.digest),
    })
}

/// What `manifests/<by>` names for `reference`: its digest, else its tag, else `latest`.
fn manifest_ref(reference: &Reference) -> String {
    match (reference.digest(), reference.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(tag)) => tag.to_string(),
        (None, None) => kiln_image::DEFAULT_TAG.to_string(),
    }
}

/// The verified manifest or index `reference` names, and its digest.
pub(crate) fn fetch_by_reference(
    session: &Session,
    reference: &Reference,
) -> Result<(Digest, Vec<u8>)> {
    let fetched = fetch_manifest(session, &manifest_ref(reference), reference.digest())?;
    Ok((fetched.digest, fetched.bytes))
}

fn store(session: &Session, content: &ContentStore, fetched: &Fetched) -> Result<()> {
    content
        .ingest(fetched.bytes.as_slice(), Some(&fetched.digest))
        .map_err(|e| session.target.content(e))?;
    Ok(())
}

/// GETs `manifests/<by>`, bounded, and checks it against `expected` (when
/// pulling by digest) or the registry's `Docker-Content-Digest`.
fn fetch_manifest(session: &Session, by: &str, expected: Option<&Digest>) -> Result<Fetched> {
    let req = Req::new("GET", session.url(&format!("manifests/{by}"))).header("Accept", ACCEPT);
    let resp = session.send(&req)?;
    match resp.status() {
        200 => {}
        404 => return Err(session.target.manifest_unknown()),
        status => {
            let request = format!("GET manifests/{by}");
            return Err(session
                .target
                .protocol(request, status, error_message(resp)));
        }
    }
    let content_type = resp.header("content-type").unwrap_or("").to_string();
    let announced = resp
        .header("docker-content-digest")
        .and_then(|d| d.trim().parse::<Digest>().ok());
    let bytes = read_bounded(session, resp)?;
    let digest = sha256_digest(&bytes);
    let expected = expected.or(announced
        .as_ref()
        .filter(|d| d.algorithm().as_ref() == "sha256"));
    if let Some(exp) = expected.filter(|e| **e != digest) {
        return Err(session.target.mismatch(exp.clone(), digest));
    }
    let kind = classify(session, &content_type, &bytes)?;
    Ok(Fetched {
        bytes,
        digest,
        kind,
    })
}

fn read_bounded(session: &Session, resp: ureq::Response) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    resp.into_reader()
        .take(MAX_MANIFEST + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| session.target.unreachable(format!("reading manifest: {e}")))?;
    if bytes.len() as u64 > MAX_MANIFEST {
        return Err(session.target.invalid("manifest larger than 4 MiB"));
    }
    Ok(bytes)
}

/// Index or manifest, by the document's own `mediaType`, else the
/// `Content-Type`, else its shape; schema 1 is refused by name.
pub(crate) fn classify(session: &Session, content_type: &str, bytes: &[u8]) -> Result<Kind> {
    let doc: Value = serde_json::from_slice(bytes)
        .map_err(|e| session.target.invalid(format!("manifest is not JSON: {e}")))?;
    let header_type = content_type.split(';').next().unwrap_or("").trim();
    let media = doc
        .get("mediaType")
        .and_then(Value::as_str)
        .unwrap_or(header_type);
    if doc.get("schemaVersion").and_then(Value::as_u64) == Some(1)
        || media.starts_with("application/vnd.docker.distribution.manifest.v1")
    {
        return Err(Error::Schema1 {
            reference: session.target.reference.clone(),
        });
    }
    let media = MediaType::from(media);
    if is_index(&media) || (doc.get("manifests").is_some() && !is_manifest(&media)) {
        Ok(Kind::Index)
    } else if is_manifest(&media) || doc.get("layers").is_some() {
        Ok(Kind::Manifest)
    } else {
        Err(session
            .target
            .invalid(format!("unsupported manifest media type {media}")))
    }
}

/// The best manifest in an index for `wanted`.
fn choose(session: &Session, index_bytes: &[u8], wanted: &Platform) -> Result<Digest> {
    let index = parse_index(index_bytes).map_err(|e| session.target.invalid(e))?;
    let candidates: Vec<(&Descriptor, Platform)> = index
        .manifests()
        .iter()
        .filter(|d| is_manifest(d.media_type()))
        .filter_map(|d| d.platform().as_ref().map(|p| (d, descriptor_platform(p))))
        .collect();
    candidates
        .iter()
        .filter_map(|(d, p)| wanted.rank(p).map(|rank| (rank, *d)))
        .min_by_key(|(rank, _)| *rank)
        .map(|(_, d)| d.digest().clone())
        .ok_or_else(|| Error::NoMatchingPlatform {
            reference: session.target.reference.clone(),
            wanted: wanted.to_string(),
            available: available(&candidates),
        })
}

fn descriptor_platform(p: &kiln_image::oci_spec::image::Platform) -> Platform {
    let (os, arch) = (p.os().to_string(), p.architecture().to_string());
    Platform::new(&os, &arch, p.variant().as_deref())
}

/// Platforms on offer, without attestation entries (`unknown/unknown`).
fn available(candidates: &[(&Descriptor, Platform)]) -> String {
    let names: Vec<String> = candidates
        .iter()
        .map(|(_, p)| p.to_string())
        .filter(|p| !p.starts_with("unknown/"))
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// Fields of an image config that say what it runs on.
#[derive(Deserialize)]
struct ConfigPlatform {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

/// A single-platform image must run on `wanted` (configs that name no
/// platform at all, such as artifacts, pass).
fn check_platform(
    session: &Session,
    content: &ContentStore,
    config: &Digest,
    wanted: &Platform,
) -> Result<()> {
    let file = content
        .open_blob(config)
        .map_err(|e| session.target.content(e))?;
    let found: ConfigPlatform = serde_json::from_reader(std::io::BufReader::new(file))
        .map_err(|e| session.target.invalid(format!("image config: {e}")))?;
    if found.os.is_empty() && found.architecture.is_empty() {
        return Ok(());
    }
    let actual = Platform::new(&found.os, &found.architecture, found.variant.as_deref());
    if wanted.rank(&actual).is_some() {
        return Ok(());
    }
    Err(Error::PlatformMismatch {
        reference: session.target.reference.clone(),
        wanted: wanted.to_string(),
        actual: actual.to_string(),
    })
}
