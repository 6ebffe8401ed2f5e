//! The exported cache's form: one OCI image manifest whose config lists the step records and
//! whose layers are the records' layer blobs, then (with `mounts=true`) one tar layer per cache
//! mount. In a directory, `index.json` points at that manifest; in a registry, a tag does.

use std::collections::{BTreeMap, HashMap};

use kiln_content::Digest;
use kiln_image::oci_spec::image::{Descriptor, ImageManifest, MediaType};
use serde::{Deserialize, Serialize};

/// Media type of the cache config blob: what tells a kiln cache from an image.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.kiln.cache.config.v1+json";

/// `org.opencontainers.image.ref.name` of the cache manifest in `index.json`.
pub(crate) const REF_NAME: &str = "kiln-cache";

/// Largest index, manifest or config read into memory.
pub(crate) const MAX_DOC: u64 = 16 << 20;

/// The config blob.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CacheConfig {
    pub records: Vec<RecordEntry>,
    #[serde(default)]
    pub mounts: Vec<MountEntry>,
}

/// One step record (see `kiln_store::CacheRecord`), its layer named by blob digest.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RecordEntry {
    pub key: String,
    pub layer: String,
    #[serde(rename = "diffID")]
    pub diff_id: String,
    pub created: String,
    pub stage: String,
    pub instruction: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A cache mount's contents: its id, the layer holding them, and its root's mode and owner.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MountEntry {
    pub id: String,
    pub layer: String,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// A parsed, cross-checked cache: every record and mount names a layer of the manifest.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub records: Vec<(RecordEntry, Descriptor)>,
    pub mounts: Vec<(MountEntry, Descriptor)>,
}

/// Checks `manifest` is a kiln cache manifest and returns its config descriptor.
pub(crate) fn config_of(manifest: &ImageManifest) -> Result<&Descriptor, String> {
    let config = manifest.config();
    if config.media_type() != &MediaType::Other(CONFIG_MEDIA_TYPE.into()) {
        return Err(format!(
            "not a kiln build cache: the manifest's config is {}, not {CONFIG_MEDIA_TYPE}",
            config.media_type()
        ));
    }
    Ok(config)
}

/// Ties the config's records and mounts to the manifest's layer descriptors.
pub(crate) fn cross_check(manifest: &ImageManifest, config: CacheConfig) -> Result<Parsed, String> {
    let layers: HashMap<String, &Descriptor> = manifest
        .layers()
        .iter()
        .map(|d| (d.digest().to_string(), d))
        .collect();
    let find = |layer: &str| {
        layers
            .get(layer)
            .map(|d| (*d).clone())
            .ok_or_else(|| format!("layer {layer} is not in the cache manifest"))
    };
    let mut parsed = Parsed::default();
    for r in config.records {
        r.diff_id
            .parse::<Digest>()
            .map_err(|e| format!("record {}: diff ID {:?}: {e}", r.key, r.diff_id))?;
        let desc = find(&r.layer)?;
        parsed.records.push((r, desc));
    }
    for m in config.mounts {
        let desc = find(&m.layer)?;
        parsed.mounts.push((m, desc));
    }
    Ok(parsed)
}
