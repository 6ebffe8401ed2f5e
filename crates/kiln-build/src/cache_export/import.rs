//! `--cache-from`: caches read at the start of a build (the manifest and the config listing the
//! records, both small), their blobs fetched into the store only when a step hits a record.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Debug;
use std::io::BufReader;
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use kiln_content::{ContentStore, Digest};
use kiln_image::oci_spec::image::{Descriptor, MediaType};
use kiln_image::{parse_index, parse_manifest};
use kiln_layer::UnpackOptions;
use kiln_store::{CacheRecord, LayerRecord, Store};

use super::INDEX_JSON;
use super::format::{
    CacheConfig, MAX_DOC, MountEntry, Parsed, RecordEntry, config_of, cross_check, read_bounded,
};
use crate::FetchError;
use crate::engine::Shared;
use crate::error::{BuildError, Result};
use crate::progress::Progress;

/// Where an imported cache's manifest and blobs come from: a directory, a registry.
pub trait CacheSource: Send + Sync + Debug {
    /// The source as messages name it (`type=local,src=/ci/cache`).
    fn describe(&self) -> String;
    /// The cache manifest's bytes, verified against the digest that names them; `None` when
    /// there is no cache there yet (a first CI run).
    fn manifest(&self) -> Result<Option<Vec<u8>>, FetchError>;
    /// Copies the blob `desc` into `content`, verified against its digest.
    fn fetch(&self, desc: &Descriptor, content: &ContentStore) -> Result<(), FetchError>;
}

/// A cache exported to a directory (an OCI layout): `--cache-from type=local,src=DIR`.
#[derive(Debug, Clone)]
pub struct LocalCache {
    dir: PathBuf,
}

impl LocalCache {
    /// The cache in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir
            .join("blobs")
            .join(digest.algorithm().as_ref())
            .join(digest.digest())
    }
}

impl CacheSource for LocalCache {
    fn describe(&self) -> String {
        format!("type=local,src={}", self.dir.display())
    }

    fn manifest(&self) -> Result<Option<Vec<u8>>, FetchError> {
        let index_path = self.dir.join(INDEX_JSON);
        let bytes = match read_bounded(&index_path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("reading {}: {e}", index_path.display()).into()),
        };
        let index = parse_index(&bytes).map_err(|e| format!("{}: {e}", index_path.display()))?;
        let desc = index
            .manifests()
            .iter()
            .find(|d| d.media_type() == &MediaType::ImageManifest)
            .ok_or_else(|| {
                format!(
                    "not a kiln build cache: {} lists no image manifest",
                    index_path.display()
                )
            })?;
        let path = self.blob_path(desc.digest());
        let bytes = read_bounded(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        let actual = kiln_content::sha256_digest(&bytes);
        if &actual != desc.digest() {
            return Err(format!(
                "{}: digest mismatch: content hashes to {actual}",
                path.display()
            )
            .into());
        }
        Ok(Some(bytes))
    }

    fn fetch(&self, desc: &Descriptor, content: &ContentStore) -> Result<(), FetchError> {
        let path = self.blob_path(desc.digest());
        let file =
            std::fs::File::open(&path).map_err(|e| format!("opening {}: {e}", path.display()))?;
        content.ingest(BufReader::new(file), Some(desc.digest()))?;
        Ok(())
    }
}

/// A record of an imported cache: the layer's descriptor and which source has it.
struct Entry {
    record: RecordEntry,
    layer: Descriptor,
    source: usize,
}

/// A cache mount an imported cache holds.
struct MountSource {
    entry: MountEntry,
    layer: Descriptor,
    source: usize,
}

/// The imported caches of one build (the first source naming a key wins), and the cache
/// mounts the build's RUN steps name (for `mounts=true`).
#[derive(Default)]
pub(crate) struct Exchange {
    sources: Vec<Arc<dyn CacheSource>>,
    records: HashMap<String, Entry>,
    mounts: HashMap<String, MountSource>,
    used_mounts: Mutex<BTreeSet<String>>,
}

impl Exchange {
    /// Reads every `--cache-from` cache's records. A cache that is not there yet is a warning;
    /// one that cannot be read (corrupt, not a kiln cache) fails the build before any step.
    pub fn load(
        store: &Store,
        sources: &[Arc<dyn CacheSource>],
        progress: &mut dyn Progress,
    ) -> Result<Self> {
        let mut out = Self::default();
        for (i, source) in sources.iter().enumerate() {
            let fail = |message: String| BuildError::CacheImport {
                from: source.describe(),
                message,
            };
            let Some(manifest) = source.manifest().map_err(|e| fail(e.to_string()))? else {
                progress.warning(&format!(
                    "cache import {}: no cache there yet",
                    source.describe()
                ));
                continue;
            };
            let parsed = read_config(store, source.as_ref(), &manifest).map_err(fail)?;
            out.add(i, parsed);
        }
        out.sources = sources.to_vec();
        Ok(out)
    }

    fn add(&mut self, source: usize, parsed: Parsed) {
        for (record, layer) in parsed.records {
            self.records.entry(record.key.clone()).or_insert(Entry {
                record,
                layer,
                source,
            });
        }
        for (entry, layer) in parsed.mounts {
            self.mounts.entry(entry.id.clone()).or_insert(MountSource {
                entry,
                layer,
                source,
            });
        }
    }

    /// The cache mount ids noted so far, sorted.
    pub fn used_mounts(&self) -> Vec<String> {
        let used = self.used_mounts.lock().unwrap_or_else(|p| p.into_inner());
        used.iter().cloned().collect()
    }
}

/// Fetches the config the manifest names into a scratch store and cross-checks it.
fn read_config(
    store: &Store,
    source: &dyn CacheSource,
    manifest: &[u8],
) -> std::result::Result<Parsed, String> {
    let manifest = parse_manifest(manifest)
        .map_err(|e| format!("not a kiln build cache: its manifest does not parse: {e}"))?;
    let config = config_of(&manifest)?;
    if config.size() > MAX_DOC {
        return Err(format!("cache config {} is too large", config.digest()));
    }
    let tmp = store.tmp_dir().map_err(|e| e.to_string())?;
    let scratch = ContentStore::open(tmp.path()).map_err(|e| e.to_string())?;
    source
        .fetch(config, &scratch)
        .map_err(|e| format!("cache config {}: {e}", config.digest()))?;
    let bytes = scratch
        .read_bytes(config.digest(), MAX_DOC)
        .map_err(|e| e.to_string())?;
    let parsed: CacheConfig =
        serde_json::from_slice(&bytes).map_err(|e| format!("cache config: {e}"))?;
    cross_check(&manifest, parsed)
}

/// The record of `key` from an imported cache, made local: its layer fetched into the store,
/// unpacked (which checks its diff ID) and recorded. A layer that cannot be fetched or does not
/// match is a warning and a miss: the step runs.
pub(crate) fn imported_hit(shared: &Shared<'_>, key: &str) -> Result<Option<CacheRecord>> {
    let exchange = &shared.exchange;
    let Some(entry) = exchange.records.get(key) else {
        return Ok(None);
    };
    let Some(source) = exchange.sources.get(entry.source) else {
        return Ok(None);
    };
    let record = match localize(shared, source.as_ref(), entry) {
        Ok(record) => record,
        Err(e) => {
            let text = format!(
                "cache import {}: layer {} of step {:?}: {e}; running the step",
                source.describe(),
                entry.layer.digest(),
                entry.record.instruction
            );
            shared.progress(|p| p.warning(&text));
            return Ok(None);
        }
    };
    shared.store.cache_put(&record)?;
    Ok(Some(record))
}

fn localize(
    shared: &Shared<'_>,
    source: &dyn CacheSource,
    entry: &Entry,
) -> std::result::Result<CacheRecord, FetchError> {
    let store = shared.store;
    let layer = &entry.layer;
    if !store.content().contains(layer.digest()) {
        source.fetch(layer, store.content())?;
    }
    let size = store.content().size(layer.digest())?;
    if size != layer.size() {
        return Err(format!("{size} bytes, the manifest says {}", layer.size()).into());
    }
    let record = CacheRecord {
        key: entry.record.key.clone(),
        diff_id: entry.record.diff_id.parse()?,
        layer_digest: layer.digest().clone(),
        media_type: layer.media_type().to_string(),
        size,
        created: entry.record.created.clone(),
        last_used: chrono::Utc::now().timestamp(),
        stage: entry.record.stage.clone(),
        instruction: entry.record.instruction.clone(),
        labels: entry.record.labels.clone(),
    };
    let unpacked = LayerRecord {
        digest: record.layer_digest.clone(),
        diff_id: record.diff_id.clone(),
        size,
        media_type: record.media_type.clone(),
    };
    // Unpacking checks the diff ID; a directory already unpacked under that diff ID would be
    // taken as is, so then the blob is checked against the claim first.
    if store.unpacked(&record.diff_id)?.is_some() {
        let blob = BufReader::new(store.content().open_blob(&record.layer_digest)?);
        let (actual, _) = kiln_layer::diff_id_of(blob)?;
        if actual != record.diff_id {
            return Err(format!("diff ID {actual}, the record says {}", record.diff_id).into());
        }
    }
    shared.layers.lowers(&[unpacked])?;
    Ok(record)
}

/// Notes the cache mount `id` a RUN step names; the first time, restores it from an imported
/// cache if the store has no mount with that id (failures are warnings: the mount starts empty).
/// Every RUN notes its mounts before it runs and the restore holds the lock, so no step sees a
/// mount half restored, nor creates it empty meanwhile.
pub(crate) fn note_cache_mount(shared: &Shared<'_>, id: &str) {
    let exchange = &shared.exchange;
    let mut used = exchange
        .used_mounts
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let first = used.insert(id.to_string());
    let Some(mount) = exchange.mounts.get(id).filter(|_| first) else {
        return;
    };
    let dir = crate::mounts::cache_dir(shared.store, id);
    if dir.exists() {
        return;
    }
    let Some(source) = exchange.sources.get(mount.source) else {
        return;
    };
    if let Err(e) = restore_mount(shared.store, source.as_ref(), mount, &dir) {
        let text = format!(
            "cache import {}: cache mount {id:?}: {e}",
            source.describe()
        );
        shared.progress(|p| p.warning(&text));
    }
}

/// Unpacks the mount's layer into a scratch directory, then renames it into place.
fn restore_mount(
    store: &Store,
    source: &dyn CacheSource,
    mount: &MountSource,
    dir: &Path,
) -> std::result::Result<(), FetchError> {
    let tmp = store.tmp_dir()?;
    let scratch = ContentStore::open(tmp.path().join("content"))?;
    source.fetch(&mount.layer, &scratch)?;
    let unpacked = tmp.path().join("mount");
    std::fs::create_dir(&unpacked)?;
    let blob = scratch.open_blob(mount.layer.digest())?;
    kiln_layer::unpack_layer(BufReader::new(blob), &unpacked, &UnpackOptions::default())?;
    let m = &mount.entry;
    std::fs::set_permissions(&unpacked, std::fs::Permissions::from_mode(m.mode))?;
    chown(&unpacked, Some(m.uid), Some(m.gid))?;
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)?;
    }
    match std::fs::rename(&unpacked, dir) {
        // Another build created the mount meanwhile: its contents win.
        Err(_) if dir.exists() => Ok(()),
        other => Ok(other?),
    }
}
