//! `--cache-to`: a build's step records (and cache mounts) written as a cache manifest into an
//! OCI layout, or a directory's `index.json` swapped to a new one atomically.

use std::collections::{BTreeSet, HashSet};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use kiln_content::{ContentStore, Digest};
use kiln_image::oci_spec::image::{
    Descriptor, DescriptorBuilder, ImageIndexBuilder, ImageManifestBuilder, MediaType,
};
use kiln_image::{canonical_json, parse_index, parse_manifest};
use kiln_layer::LayerOptions;
use kiln_store::{CacheRecord, Store};

use super::format::{
    CONFIG_MEDIA_TYPE, CacheConfig, MAX_DOC, MountEntry, REF_NAME, RecordEntry, read_bounded,
};
use super::{BuildCache, INDEX_JSON};
use crate::error::{BuildError, Result, io_err};

/// Which records `--cache-to` exports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CacheMode {
    /// Every stage the build ran, builder stages included (kiln's default).
    #[default]
    Max,
    /// Only the target and the stages it is built `FROM`: the final image's layers.
    Min,
}

/// How `--cache-to` exports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheExportOptions {
    /// Which stages' records.
    pub mode: CacheMode,
    /// Also the contents of the `RUN --mount=type=cache` directories the build used.
    pub mounts: bool,
}

/// Writes `cache` into the scratch layout `dest` (blobs, config, manifest; no `index.json`) and
/// returns the manifest's descriptor: what a registry export pushes. Layer blobs are hard-linked
/// from the store where they can be, so `dest` must be a layout nobody writes into.
pub fn export_layout(
    store: &Store,
    cache: &BuildCache,
    opts: &CacheExportOptions,
    dest: &ContentStore,
) -> Result<Descriptor> {
    write_layout(store, cache, opts, dest, Blobs::Link)
}

/// How layer blobs get from the store into the exported layout.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Blobs {
    /// Hard links where possible (a scratch layout: no copy, and no one edits it).
    Link,
    /// Copies (a user's directory: editing it must never reach the store).
    Copy,
}

fn write_layout(
    store: &Store,
    cache: &BuildCache,
    opts: &CacheExportOptions,
    dest: &ContentStore,
    blobs: Blobs,
) -> Result<Descriptor> {
    let records = selected(cache, opts.mode);
    let mut seen = HashSet::new();
    let mut descriptors = Vec::new();
    let mut config = CacheConfig::default();
    for r in &records {
        copy_blob(store.content(), dest, &r.layer_digest, blobs)?;
        if seen.insert(r.layer_digest.clone()) {
            descriptors.push(layer_descriptor(&r.media_type, r.size, &r.layer_digest));
        }
        config.records.push(RecordEntry {
            key: r.key.clone(),
            layer: r.layer_digest.to_string(),
            diff_id: r.diff_id.to_string(),
            created: r.created.clone(),
            stage: r.stage.clone(),
            instruction: r.instruction.clone(),
            labels: r.labels.clone(),
        });
    }
    if opts.mounts {
        for id in &cache.mounts {
            let dir = crate::mounts::cache_dir(store, id);
            if let Some((entry, desc)) = mount_layer(&dir, id, dest)? {
                config.mounts.push(entry);
                descriptors.push(desc);
            }
        }
    }
    let config_bytes = serde_json::to_vec(&config).map_err(invalid)?;
    let config_desc = write_doc(
        dest,
        MediaType::Other(CONFIG_MEDIA_TYPE.into()),
        &config_bytes,
    )?;
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .artifact_type(MediaType::Other(CONFIG_MEDIA_TYPE.into()))
        .config(config_desc)
        .layers(descriptors)
        .build()
        .map_err(invalid)?;
    let bytes = canonical_json(&manifest).map_err(invalid)?;
    write_doc(dest, MediaType::ImageManifest, &bytes)
}

/// Exports `cache` into the directory `dir` (created if need be): new blobs are added, then
/// `index.json` is replaced atomically, then the blobs only the previous cache used are removed.
pub fn export_dir(
    store: &Store,
    cache: &BuildCache,
    opts: &CacheExportOptions,
    dir: &Path,
) -> Result<Descriptor> {
    std::fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
    let layout = ContentStore::open(dir)?;
    let previous = previous_blobs(dir, &layout);
    let manifest = write_layout(store, cache, opts, &layout, Blobs::Copy)?;
    write_index(dir, &manifest)?;
    let kept: HashSet<Digest> = current_blobs(&layout, &manifest)?;
    for stale in previous.difference(&kept) {
        // Best effort: a blob left behind costs space, never correctness.
        let _ = layout.delete(stale);
    }
    Ok(manifest)
}

/// The records `mode` selects, each key once.
fn selected(cache: &BuildCache, mode: CacheMode) -> Vec<&CacheRecord> {
    let mut seen = BTreeSet::new();
    cache
        .stages
        .iter()
        .filter(|s| mode == CacheMode::Max || s.in_target_chain)
        .flat_map(|s| &s.records)
        .filter(|r| seen.insert(r.key.clone()))
        .collect()
}

fn layer_descriptor(media_type: &str, size: u64, digest: &Digest) -> Descriptor {
    Descriptor::new(MediaType::from(media_type), size, digest.clone())
}

/// Puts a blob of the store into `dest` unless it is there: a hard link if asked and possible,
/// else a streamed copy verified on commit.
fn copy_blob(from: &ContentStore, dest: &ContentStore, digest: &Digest, how: Blobs) -> Result<()> {
    if dest.contains(digest) {
        return Ok(());
    }
    if how == Blobs::Link
        && std::fs::hard_link(from.blob_path(digest), dest.blob_path(digest)).is_ok()
    {
        return Ok(());
    }
    let blob = from.open_blob(digest)?;
    dest.ingest(std::io::BufReader::new(blob), Some(digest))?;
    Ok(())
}

/// The cache mount at `dir` as a layer in `dest`; `None` when the store has no such mount.
fn mount_layer(
    dir: &Path,
    id: &str,
    dest: &ContentStore,
) -> Result<Option<(MountEntry, Descriptor)>> {
    let Ok(meta) = std::fs::metadata(dir) else {
        return Ok(None);
    };
    let mut writer = dest.writer()?;
    let desc = kiln_layer::write_layer(dir, &mut writer, &LayerOptions::default())?;
    let (digest, size) = writer.commit(Some(&desc.digest))?;
    let entry = MountEntry {
        id: id.to_string(),
        layer: digest.to_string(),
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
    };
    let layer = Descriptor::new(MediaType::ImageLayerGzip, size, digest);
    Ok(Some((entry, layer)))
}

fn write_doc(dest: &ContentStore, media_type: MediaType, bytes: &[u8]) -> Result<Descriptor> {
    let digest = dest.write_bytes(bytes)?;
    Ok(Descriptor::new(media_type, bytes.len() as u64, digest))
}

/// Replaces `dir/index.json` by one naming `manifest`: temp file, fsync, rename, fsync dir.
fn write_index(dir: &Path, manifest: &Descriptor) -> Result<()> {
    let named = DescriptorBuilder::default()
        .media_type(manifest.media_type().clone())
        .digest(manifest.digest().clone())
        .size(manifest.size())
        .annotations([(
            "org.opencontainers.image.ref.name".to_string(),
            REF_NAME.to_string(),
        )])
        .build()
        .map_err(invalid)?;
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![named])
        .build()
        .map_err(invalid)?;
    let bytes = canonical_json(&index).map_err(invalid)?;
    let mut temp = tempfile::Builder::new()
        .prefix(".index.json-")
        .tempfile_in(dir)
        .map_err(io_err("creating a temp file in", dir))?;
    temp.write_all(&bytes)
        .and_then(|()| temp.as_file().sync_all())
        .map_err(io_err("writing", temp.path()))?;
    let target = dir.join(INDEX_JSON);
    temp.persist(&target).map_err(|e| BuildError::Io {
        action: "replacing",
        path: target.clone(),
        source: e.error,
    })?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("syncing", dir))
}

/// Blobs of the kiln cache `dir` held before this export (none if it held none, or not a
/// readable one): only these may be removed afterwards.
fn previous_blobs(dir: &Path, layout: &ContentStore) -> HashSet<Digest> {
    let Ok(bytes) = read_bounded(&dir.join(INDEX_JSON)) else {
        return HashSet::new();
    };
    let Ok(index) = parse_index(&bytes) else {
        return HashSet::new();
    };
    index
        .manifests()
        .iter()
        .filter_map(|m| current_blobs(layout, m).ok())
        .flatten()
        .collect()
}

/// The manifest's own blob, its config and its layers, if it is a kiln cache manifest.
fn current_blobs(layout: &ContentStore, manifest: &Descriptor) -> Result<HashSet<Digest>> {
    let bytes = layout.read_bytes(manifest.digest(), MAX_DOC)?;
    let parsed = parse_manifest(&bytes)?;
    super::format::config_of(&parsed).map_err(BuildError::Invalid)?;
    Ok(std::iter::once(manifest.digest().clone())
        .chain(std::iter::once(parsed.config().digest().clone()))
        .chain(parsed.layers().iter().map(|d| d.digest().clone()))
        .collect())
}

fn invalid(e: impl std::fmt::Display) -> BuildError {
    BuildError::Invalid(format!("building the cache manifest: {e}"))
}
