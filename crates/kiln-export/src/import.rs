//! Import: find the images an archive or layout describes, verify every
//! blob against its digest and every layer against `rootfs.diff_ids`, and
//! commit the config and then the manifest only once all of an image's
//! layers are in the store and verified: a manifest in the store always has
//! all of its blobs.

use std::io::Read;
use std::path::Path;

use kiln_content::{ContentStore, Digest, sha256_digest};
use kiln_image::media::{self, MediaFlavor};
use kiln_image::oci_spec::image::{
    Descriptor, DigestAlgorithm, ImageIndex, ImageManifest, ImageManifestBuilder, MediaType,
};
use kiln_image::{canonical_json, convert_manifest};
use serde::Deserialize;

use crate::error::{Error, Result, json_err, mismatch};
use crate::format::{
    ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, ANNOTATION_REFERENCE_TYPE, DockerEntry, INDEX_JSON,
    MANIFEST_JSON,
};
use crate::paths;
use crate::source::{ArchiveSource, DirSource, Source};
use crate::stage::LayerBlob;

/// Deepest nesting of indexes followed.
const MAX_INDEX_DEPTH: usize = 4;

/// An image written into the store by an import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedImage {
    /// The manifest in the store (an OCI manifest with gzip layers, or the
    /// archive's own manifest when its layers were already gzip).
    pub manifest_digest: Digest,
    /// The config blob; its digest is the image ID `docker images` shows.
    pub config_digest: Digest,
    /// Names as written in the archive: `RepoTags` of a docker-archive, else
    /// the `io.containerd.image.name` or `org.opencontainers.image.ref.name`
    /// annotation of the OCI index.
    pub tags: Vec<String>,
}

/// Imports every image of a docker-archive (`docker save`, old or OCI-shaped)
/// or an OCI image layout tar, plain or gzip-compressed, read as a stream.
/// Images come in archive order; an archive that lists none gives none.
pub fn import_archive(store: &ContentStore, reader: impl Read) -> Result<Vec<ImportedImage>> {
    let mut source = ArchiveSource::read(store, reader)?;
    Importer::new(store, &mut source).run()
}

/// Imports every image of an OCI image layout directory.
pub fn import_oci_layout_dir(store: &ContentStore, dir: &Path) -> Result<Vec<ImportedImage>> {
    let mut source = DirSource::new(store, dir);
    if !source.exists(INDEX_JSON) {
        return Err(Error::UnknownFormat);
    }
    Importer::new(store, &mut source).run()
}

/// One image to import, as the archive's metadata describes it.
enum Plan {
    /// A manifest blob listed (maybe via a nested index) in `index.json`.
    Manifest(Box<FoundManifest>),
    /// A `manifest.json` entry without a manifest blob: the manifest is
    /// assembled from the config and layer files.
    Docker(DockerEntry),
}

struct FoundManifest {
    digest: Digest,
    bytes: Vec<u8>,
    manifest: ImageManifest,
    tags: Vec<String>,
}

/// What a layer must turn out to be.
struct Expect<'e> {
    diff_id: &'e Digest,
    index: usize,
    /// Digest of the source bytes, from a descriptor or a `blobs/` path.
    digest: Option<&'e Digest>,
    /// Size of the source bytes, from a descriptor.
    size: Option<u64>,
}

struct Importer<'a, S> {
    store: &'a ContentStore,
    source: &'a mut S,
}

impl<'a, S: Source> Importer<'a, S> {
    fn new(store: &'a ContentStore, source: &'a mut S) -> Self {
        Self { store, source }
    }

    fn run(mut self) -> Result<Vec<ImportedImage>> {
        let plans = plan(self.source)?;
        plans
            .into_iter()
            .map(|p| match p {
                Plan::Manifest(found) => self.import_manifest(*found),
                Plan::Docker(entry) => self.import_docker(entry),
            })
            .collect()
    }

    fn import_manifest(&mut self, found: FoundManifest) -> Result<ImportedImage> {
        let what = found.digest.to_string();
        let config_bytes = blob_bytes(self.source, found.manifest.config())?;
        let diff_ids = diff_ids(&config_bytes, &what, found.manifest.layers().len())?;
        let mut layers = Vec::with_capacity(diff_ids.len());
        let mut changed = false;
        for (index, (desc, diff_id)) in found.manifest.layers().iter().zip(&diff_ids).enumerate() {
            let path = paths::blob_path(desc.digest());
            let expect = Expect {
                diff_id,
                index,
                digest: Some(desc.digest()),
                size: Some(desc.size()),
            };
            let layer = self.layer(&path, &expect)?;
            changed |= &layer.digest != desc.digest();
            layers.push(layer);
        }
        let config_digest = self.store.write_bytes(&config_bytes)?;
        let manifest_digest = if changed {
            let rewritten = gzip_manifest(&found.manifest, &layers);
            self.store.write_bytes(&to_json(&rewritten, "manifest")?)?
        } else {
            self.store.write_bytes(&found.bytes)?
        };
        Ok(ImportedImage {
            manifest_digest,
            config_digest,
            tags: found.tags,
        })
    }

    fn import_docker(&mut self, entry: DockerEntry) -> Result<ImportedImage> {
        let config_path = paths::clean(&entry.config)?;
        let config_bytes = self.source.meta(&config_path)?;
        check_named(&config_path, &config_bytes)?;
        let diff_ids = diff_ids(&config_bytes, &config_path, entry.layers.len())?;
        let mut layers = Vec::with_capacity(diff_ids.len());
        for (index, (raw, diff_id)) in entry.layers.iter().zip(&diff_ids).enumerate() {
            let path = paths::clean(raw)?;
            let named = paths::digest_of_blob_path(&path);
            let expect = Expect {
                diff_id,
                index,
                digest: named.as_ref(),
                size: None,
            };
            let layer = self.layer(&path, &expect)?;
            layers.push(Descriptor::new(
                MediaType::ImageLayerGzip,
                layer.size,
                layer.digest,
            ));
        }
        let config_digest = self.store.write_bytes(&config_bytes)?;
        let config = Descriptor::new(
            MediaType::ImageConfig,
            config_bytes.len() as u64,
            config_digest.clone(),
        );
        let manifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(config)
            .layers(layers)
            .build()
            .map_err(|e| Error::Build {
                what: "manifest".into(),
                reason: e.to_string(),
            })?;
        let manifest_digest = self.store.write_bytes(&to_json(&manifest, "manifest")?)?;
        Ok(ImportedImage {
            manifest_digest,
            config_digest,
            tags: entry.repo_tags.unwrap_or_default(),
        })
    }

    /// The layer at `path`, checked against what the image expects.
    fn layer(&mut self, path: &str, expect: &Expect<'_>) -> Result<LayerBlob> {
        let key = self.source.canonical(path)?;
        let layer = self.source.layer(&key)?;
        check_layer(&key, &layer, expect)?;
        Ok(layer)
    }
}

/// Checks a layer against the config's diff ID and the digest and size
/// expected of its source, when known.
fn check_layer(path: &str, layer: &LayerBlob, expect: &Expect<'_>) -> Result<()> {
    if &layer.diff_id != expect.diff_id {
        return Err(Error::DiffIdMismatch {
            path: path.to_string(),
            index: expect.index,
            digests: mismatch(expect.diff_id, &layer.diff_id),
        });
    }
    if let Some(want) = expect.digest.filter(|d| **d != layer.source_digest) {
        return Err(Error::DigestMismatch {
            what: path.to_string(),
            digests: mismatch(want, &layer.source_digest),
        });
    }
    match expect.size {
        Some(want) if want != layer.source_size => Err(Error::SizeMismatch {
            what: path.to_string(),
            expected: want,
            actual: layer.source_size,
        }),
        _ => Ok(()),
    }
}

/// A file under `blobs/<alg>/<hex>` must hash to the digest it is named by.
fn check_named(path: &str, bytes: &[u8]) -> Result<()> {
    let Some(named) = paths::digest_of_blob_path(path) else {
        return Ok(());
    };
    let actual = sha256_digest(bytes);
    if actual != named {
        return Err(Error::DigestMismatch {
            what: path.to_string(),
            digests: mismatch(&named, &actual),
        });
    }
    Ok(())
}

/// The manifest with its layers replaced by their gzip blobs, in OCI types.
fn gzip_manifest(original: &ImageManifest, layers: &[LayerBlob]) -> ImageManifest {
    let mut out = convert_manifest(original, MediaFlavor::Oci);
    let descs = out
        .layers()
        .iter()
        .zip(layers)
        .map(|(desc, layer)| {
            let mut d = desc.clone();
            if d.digest() != &layer.digest {
                d.set_media_type(MediaType::ImageLayerGzip);
                d.set_digest(layer.digest.clone());
                d.set_size(layer.size);
            }
            d
        })
        .collect();
    out.set_layers(descs);
    out
}

fn to_json<T: serde::Serialize>(value: &T, what: &str) -> Result<Vec<u8>> {
    canonical_json(value).map_err(|e| Error::Build {
        what: what.to_string(),
        reason: e.to_string(),
    })
}

/// The part of an image config import needs.
#[derive(Deserialize)]
struct ConfigRootfs {
    rootfs: RootfsIds,
}

#[derive(Deserialize)]
struct RootfsIds {
    #[serde(default)]
    diff_ids: Vec<String>,
}

/// Parses `rootfs.diff_ids`, which must have one entry per layer.
fn diff_ids(config: &[u8], what: &str, layers: usize) -> Result<Vec<Digest>> {
    let parsed: ConfigRootfs =
        serde_json::from_slice(config).map_err(|e| json_err(e, format!("config of {what}")))?;
    let ids = parsed
        .rootfs
        .diff_ids
        .into_iter()
        .map(|s| {
            s.parse::<Digest>().map_err(|_| Error::BadDigest {
                what: format!("rootfs.diff_ids of {what}"),
                value: s,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if ids.len() != layers {
        return Err(Error::LayerCountMismatch {
            what: what.to_string(),
            layers,
            diff_ids: ids.len(),
        });
    }
    Ok(ids)
}

/// Reads a blob of the layout and checks it against its descriptor.
fn blob_bytes(source: &mut impl Source, desc: &Descriptor) -> Result<Vec<u8>> {
    let path = paths::blob_path(desc.digest());
    if desc.digest().algorithm() != &DigestAlgorithm::Sha256 {
        return Err(Error::Unsupported {
            what: path,
            reason: "only sha256 digests are supported".into(),
        });
    }
    let bytes = source.meta(&path)?;
    let actual = sha256_digest(&bytes);
    if &actual != desc.digest() {
        return Err(Error::DigestMismatch {
            what: path,
            digests: mismatch(desc.digest(), &actual),
        });
    }
    if bytes.len() as u64 != desc.size() {
        return Err(Error::SizeMismatch {
            what: path,
            expected: desc.size(),
            actual: bytes.len() as u64,
        });
    }
    Ok(bytes)
}

/// Lists the images to import: manifests from `index.json`, with the
/// `RepoTags` of matching `manifest.json` entries, then `manifest.json`
/// entries no manifest blob covers.
fn plan(source: &mut impl Source) -> Result<Vec<Plan>> {
    let has_docker = source.exists(MANIFEST_JSON);
    let has_oci = source.exists(INDEX_JSON);
    if !has_docker && !has_oci {
        return Err(Error::UnknownFormat);
    }
    let mut plans = Vec::new();
    if has_oci {
        let index = source.meta(INDEX_JSON)?;
        let index: ImageIndex =
            serde_json::from_slice(&index).map_err(|e| json_err(e, INDEX_JSON))?;
        let mut found = Vec::new();
        collect_manifests(source, index.manifests(), None, 0, &mut found)?;
        plans.extend(found.into_iter().map(|m| Plan::Manifest(Box::new(m))));
    }
    if has_docker {
        let entries: Vec<DockerEntry> = serde_json::from_slice(&source.meta(MANIFEST_JSON)?)
            .map_err(|e| json_err(e, MANIFEST_JSON))?;
        merge_docker_entries(source, entries, &mut plans)?;
    }
    Ok(plans)
}

/// Attaches each entry's `RepoTags` to the manifest with the same config, or
/// plans it on its own.
fn merge_docker_entries(
    source: &mut impl Source,
    entries: Vec<DockerEntry>,
    plans: &mut Vec<Plan>,
) -> Result<()> {
    let mut retagged = vec![false; plans.len()];
    for entry in entries {
        let config = config_digest(source, &entry.config)?;
        let matching = plans.iter().position(|p| match p {
            Plan::Manifest(m) => {
                m.manifest.config().digest() == &config
                    && m.manifest.layers().len() == entry.layers.len()
            }
            Plan::Docker(_) => false,
        });
        match matching {
            Some(i) => {
                if let Plan::Manifest(m) = &mut plans[i] {
                    if !retagged[i] {
                        m.tags.clear();
                        retagged[i] = true;
                    }
                    m.tags.extend(entry.repo_tags.into_iter().flatten());
                }
            }
            None => plans.push(Plan::Docker(entry)),
        }
    }
    Ok(())
}

/// A config's digest: named by its path in an OCI-shaped archive, else hashed.
fn config_digest(source: &mut impl Source, raw: &str) -> Result<Digest> {
    let path = paths::clean(raw)?;
    match paths::digest_of_blob_path(&path) {
        Some(d) => Ok(d),
        None => Ok(sha256_digest(&source.meta(&path)?)),
    }
}

/// Walks index descriptors down to image manifests. A nested index passes
/// its name on only when exactly one of its children is in the layout
/// (the usual single-platform save of a multi-platform image).
fn collect_manifests(
    source: &mut impl Source,
    descriptors: &[Descriptor],
    inherited: Option<&str>,
    depth: usize,
    out: &mut Vec<FoundManifest>,
) -> Result<()> {
    if depth > MAX_INDEX_DEPTH {
        return Err(Error::Unsupported {
            what: INDEX_JSON.into(),
            reason: format!("indexes nested more than {MAX_INDEX_DEPTH} deep"),
        });
    }
    for desc in descriptors {
        let name = name_of(desc).or(inherited);
        if media::is_index(desc.media_type()) {
            let bytes = blob_bytes(source, desc)?;
            let nested: ImageIndex = serde_json::from_slice(&bytes)
                .map_err(|e| json_err(e, format!("index {}", desc.digest())))?;
            let present: Vec<Descriptor> = nested
                .manifests()
                .iter()
                .filter(|d| !is_attestation(d) && source.exists(&paths::blob_path(d.digest())))
                .cloned()
                .collect();
            let pass_on = if present.len() == 1 { name } else { None };
            collect_manifests(source, &present, pass_on, depth + 1, out)?;
        } else if media::is_manifest(desc.media_type()) && !is_attestation(desc) {
            add_manifest(source, desc, name, out)?;
        }
    }
    Ok(())
}

/// Reads, verifies and records one manifest, merging names of duplicates.
fn add_manifest(
    source: &mut impl Source,
    desc: &Descriptor,
    name: Option<&str>,
    out: &mut Vec<FoundManifest>,
) -> Result<()> {
    if let Some(existing) = out.iter_mut().find(|m| &m.digest == desc.digest()) {
        existing.tags.extend(name.map(str::to_string));
        return Ok(());
    }
    let bytes = blob_bytes(source, desc)?;
    let manifest: ImageManifest = serde_json::from_slice(&bytes)
        .map_err(|e| json_err(e, format!("manifest {}", desc.digest())))?;
    let config_type = manifest.config().media_type();
    if !matches!(
        media::convert(config_type, MediaFlavor::Oci),
        MediaType::ImageConfig
    ) {
        return Err(Error::Unsupported {
            what: desc.digest().to_string(),
            reason: format!("not a container image (config media type {config_type})"),
        });
    }
    out.push(FoundManifest {
        digest: desc.digest().clone(),
        bytes,
        manifest,
        tags: name.map(str::to_string).into_iter().collect(),
    });
    Ok(())
}

/// The full name if given, else the OCI ref name.
fn name_of(desc: &Descriptor) -> Option<&str> {
    let annotations = desc.annotations().as_ref()?;
    annotations
        .get(ANNOTATION_IMAGE_NAME)
        .or_else(|| annotations.get(ANNOTATION_REF_NAME))
        .map(String::as_str)
}

fn is_attestation(desc: &Descriptor) -> bool {
    desc.annotations()
        .as_ref()
        .is_some_and(|a| a.contains_key(ANNOTATION_REFERENCE_TYPE))
}
