//! Export: write images from the store as an OCI image layout tar, or as a
//! docker-archive that is the same layout plus `manifest.json` and
//! `repositories`.
//!
//! Layers are written as the gzip blobs the store holds: `docker load`
//! inflates each layer and checks it against `rootfs.diff_ids`, so the diff
//! IDs (and the image ID, the config digest) are those of the store. The
//! archive is deterministic: fixed owners, modes and mtimes, blobs in
//! first-use order.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;

use kiln_content::{ContentStore, Digest};
use kiln_image::media::{self, MediaFlavor};
use kiln_image::oci_spec::image::{Descriptor, ImageManifest, MediaType};
use kiln_image::{Reference, build_index, canonical_json};

use crate::error::{Error, Result, json_err, mismatch};
use crate::format::{
    ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, DockerEntry, INDEX_JSON, MANIFEST_JSON, OCI_LAYOUT,
    OCI_LAYOUT_CONTENT, REPOSITORIES,
};
use crate::paths;
use crate::stage::MAX_META;
use crate::tarout::TarWriter;

/// An image to export: a manifest in the store and the names to give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportImage {
    /// OCI or Docker v2 schema 2 manifest in the store.
    pub manifest_digest: Digest,
    /// Full references such as `docker.io/library/busybox:latest`.
    pub tags: Vec<String>,
}

/// Writes `images` as a docker-archive that `docker load` (20.10 and later)
/// accepts; it is also a valid OCI image layout.
pub fn export_docker_archive(
    store: &ContentStore,
    images: &[ExportImage],
    out: impl Write,
) -> Result<()> {
    export(store, images, out, true)
}

/// Writes `images` as an OCI image layout tar (`oci-archive:FILE:TAG`).
pub fn export_oci_archive(
    store: &ContentStore,
    images: &[ExportImage],
    out: impl Write,
) -> Result<()> {
    export(store, images, out, false)
}

/// The OCI layout, plus `manifest.json` and `repositories` for docker.
fn export(
    store: &ContentStore,
    images: &[ExportImage],
    out: impl Write,
    docker_metadata: bool,
) -> Result<()> {
    let plan = ExportPlan::new(store, images)?;
    let mut tar = TarWriter::new(out);
    write_layout(&mut tar, store, &plan)?;
    if docker_metadata {
        tar.file(MANIFEST_JSON, &docker_manifest(&plan)?)?;
        tar.file(REPOSITORIES, &repositories(&plan)?)?;
    }
    tar.finish()
}

/// One image, resolved against the store.
struct Planned {
    manifest: Descriptor,
    config: Digest,
    layers: Vec<Digest>,
    refs: Vec<Reference>,
}

/// Everything to write, checked up front so that a missing blob fails the
/// export before any output.
struct ExportPlan {
    images: Vec<Planned>,
    blobs: Vec<(Digest, u64)>,
}

impl ExportPlan {
    fn new(store: &ContentStore, images: &[ExportImage]) -> Result<Self> {
        let mut plan = Self {
            images: Vec::with_capacity(images.len()),
            blobs: Vec::new(),
        };
        let mut seen = HashSet::new();
        for image in images {
            let (planned, manifest) = plan_image(store, image)?;
            let blobs = std::iter::once(manifest.config())
                .chain(manifest.layers())
                .map(|d| (d.digest().clone(), d.size()))
                .chain([(planned.manifest.digest().clone(), planned.manifest.size())]);
            for (digest, size) in blobs {
                check_blob(store, &image.manifest_digest, &digest, size)?;
                if seen.insert(digest.clone()) {
                    plan.blobs.push((digest, size));
                }
            }
            plan.images.push(planned);
        }
        Ok(plan)
    }
}

fn plan_image(store: &ContentStore, image: &ExportImage) -> Result<(Planned, ImageManifest)> {
    let refs = image
        .tags
        .iter()
        .map(|t| {
            Reference::parse(t).map_err(|source| Error::Reference {
                reference: t.clone(),
                source,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let bytes = store.read_bytes(&image.manifest_digest, MAX_META)?;
    let what = format!("manifest {}", image.manifest_digest);
    let manifest: ImageManifest =
        serde_json::from_slice(&bytes).map_err(|e| json_err(e, what.clone()))?;
    let media_type = manifest
        .media_type()
        .clone()
        .unwrap_or(MediaType::ImageManifest);
    if !media::is_manifest(&media_type) {
        return Err(Error::Unsupported {
            what,
            reason: format!("media type {media_type} is not an image manifest"),
        });
    }
    let planned = Planned {
        manifest: Descriptor::new(
            media_type,
            bytes.len() as u64,
            image.manifest_digest.clone(),
        ),
        config: manifest.config().digest().clone(),
        layers: manifest
            .layers()
            .iter()
            .map(|d| d.digest().clone())
            .collect(),
        refs,
    };
    Ok((planned, manifest))
}

/// The blob must be in the store with the size its descriptor says.
fn check_blob(store: &ContentStore, image: &Digest, digest: &Digest, size: u64) -> Result<()> {
    let actual = store.size(digest).map_err(|e| match e {
        kiln_content::Error::NotFound { .. } => Error::MissingBlob {
            image: image.clone(),
            digest: digest.clone(),
        },
        other => other.into(),
    })?;
    if actual != size {
        return Err(Error::SizeMismatch {
            what: format!("stored blob {digest}"),
            expected: size,
            actual,
        });
    }
    Ok(())
}

/// `oci-layout`, the blobs, then `index.json`.
fn write_layout<W: Write>(
    tar: &mut TarWriter<W>,
    store: &ContentStore,
    plan: &ExportPlan,
) -> Result<()> {
    tar.file(OCI_LAYOUT, OCI_LAYOUT_CONTENT)?;
    tar.dir("blobs/")?;
    tar.dir("blobs/sha256/")?;
    for (digest, size) in &plan.blobs {
        append_blob(tar, store, digest, *size)?;
    }
    tar.file(INDEX_JSON, &oci_index(plan)?)
}

/// One index entry per name (a layout is addressed by tag), or one
/// unnamed entry for an untagged image.
fn oci_index(plan: &ExportPlan) -> Result<Vec<u8>> {
    let mut entries = Vec::new();
    for image in &plan.images {
        if image.refs.is_empty() {
            entries.push(image.manifest.clone());
        }
        for r in &image.refs {
            let mut annotations = std::collections::HashMap::new();
            annotations.insert(ANNOTATION_IMAGE_NAME.to_string(), r.to_string());
            if let Some(tag) = r.tag() {
                annotations.insert(ANNOTATION_REF_NAME.to_string(), tag.to_string());
            }
            let mut entry = image.manifest.clone();
            entry.set_annotations(Some(annotations));
            entries.push(entry);
        }
    }
    let index = build_index(entries, MediaFlavor::Oci).map_err(|e| Error::Build {
        what: INDEX_JSON.into(),
        reason: e.to_string(),
    })?;
    canonical_json(&index).map_err(|e| Error::Build {
        what: INDEX_JSON.into(),
        reason: e.to_string(),
    })
}

/// `docker load`'s image list. Digest-only references cannot be tags there.
fn docker_manifest(plan: &ExportPlan) -> Result<Vec<u8>> {
    let entries: Vec<DockerEntry> = plan
        .images
        .iter()
        .map(|image| DockerEntry {
            config: paths::blob_path(&image.config),
            repo_tags: Some(image.refs.iter().filter_map(familiar_tag).collect()),
            layers: image.layers.iter().map(paths::blob_path).collect(),
        })
        .collect();
    serde_json::to_vec(&entries).map_err(|e| Error::Build {
        what: MANIFEST_JSON.into(),
        reason: e.to_string(),
    })
}

/// The legacy `repository → tag → top layer` map. Old loaders need it only
/// without `manifest.json`; it is written for tools that list tags from it.
fn repositories(plan: &ExportPlan) -> Result<Vec<u8>> {
    let mut repos: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for image in &plan.images {
        let Some(top) = image.layers.last() else {
            continue;
        };
        for r in &image.refs {
            if let Some(tag) = r.tag() {
                repos
                    .entry(r.familiar())
                    .or_default()
                    .insert(tag.to_string(), top.digest().to_string());
            }
        }
    }
    serde_json::to_vec(&repos).map_err(|e| Error::Build {
        what: REPOSITORIES.into(),
        reason: e.to_string(),
    })
}

/// `busybox:latest` for a tagged reference.
fn familiar_tag(r: &Reference) -> Option<String> {
    r.tag().map(|tag| format!("{}:{tag}", r.familiar()))
}

/// Streams a blob into the archive, re-hashing it so that a corrupt store
/// is reported instead of exported.
fn append_blob<W: Write>(
    tar: &mut TarWriter<W>,
    store: &ContentStore,
    digest: &Digest,
    size: u64,
) -> Result<()> {
    let what = format!("stored blob {digest}");
    let file = store.open_blob(digest)?;
    let (actual, read) = tar.stream(&paths::blob_path(digest), size, file, &what)?;
    if read != size {
        return Err(Error::SizeMismatch {
            what,
            expected: size,
            actual: read,
        });
    }
    if &actual != digest {
        return Err(Error::DigestMismatch {
            what,
            digests: mismatch(digest, &actual),
        });
    }
    Ok(())
}
