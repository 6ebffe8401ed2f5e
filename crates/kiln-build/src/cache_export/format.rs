//! The exported cache's form: one OCI image manifest whose config lists the step records and
//! whose layers are the records' layer blobs, then (with `mounts=true`) one tar layer per cache
//! mount. In a directory, `index.json` points at that manifest; in a registry, a tag does.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;

use kiln_content::Digest;
use kiln_image::oci_spec::image::{Descriptor, DigestAlgorithm, ImageManifest, MediaType};
use serde::{Deserialize, Serialize};

/// Media type of the cache config blob: what tells a kiln cache from an image.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.kiln.cache.config.v1+json";

/// `org.opencontainers.image.ref.name` of the cache manifest in `index.json`.
pub(crate) const REF_NAME: &str = "kiln-cache";

/// Largest index, manifest or config read into memory.
pub(crate) const MAX_DOC: u64 = 16 << 20;

/// Reads a small file (an index, a manifest), refusing one over [`MAX_DOC`] bytes.
pub(crate) fn read_bounded(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_DOC + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_DOC {
        return Err(std::io::Error::other(format!(
            "over the {MAX_DOC} byte limit for metadata"
        )));
    }
    Ok(bytes)
}

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
        let diff_id = r.diff_id.parse::<Digest>().ok();
        if diff_id.is_none_or(|d| d.algorithm() != &DigestAlgorithm::Sha256) {
            return Err(format!(
                "record {}: diff ID {:?} is not a sha256 digest",
                r.key, r.diff_id
            ));
        }
        let desc = find(&r.layer)?;
        parsed.records.push((r, desc));
    }
    for m in config.mounts {
        let desc = find(&m.layer)?;
        parsed.mounts.push((m, desc));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use kiln_image::oci_spec::image::ImageManifestBuilder;

    use super::*;

    fn digest(c: char) -> Digest {
        format!("sha256:{}", c.to_string().repeat(64))
            .parse()
            .unwrap()
    }

    fn manifest(config_type: &str, layers: &[Digest]) -> ImageManifest {
        ImageManifestBuilder::default()
            .schema_version(2u32)
            .config(Descriptor::new(config_type.into(), 2, digest('c')))
            .layers(
                layers
                    .iter()
                    .map(|d| Descriptor::new(MediaType::ImageLayerGzip, 10, d.clone()))
                    .collect::<Vec<_>>(),
            )
            .build()
            .unwrap()
    }

    fn record(layer: &Digest) -> RecordEntry {
        RecordEntry {
            key: "k".into(),
            layer: layer.to_string(),
            diff_id: digest('d').to_string(),
            created: "1970-01-01T00:00:00Z".into(),
            stage: "s".into(),
            instruction: "RUN x".into(),
            labels: BTreeMap::new(),
        }
    }

    #[test]
    fn image_configs_are_not_caches() {
        let m = manifest("application/vnd.oci.image.config.v1+json", &[]);
        assert!(
            config_of(&m)
                .unwrap_err()
                .contains("not a kiln build cache")
        );
        assert!(config_of(&manifest(CONFIG_MEDIA_TYPE, &[])).is_ok());
    }

    #[test]
    fn records_must_name_manifest_layers() {
        let m = manifest(CONFIG_MEDIA_TYPE, &[digest('a')]);
        let ok = CacheConfig {
            records: vec![record(&digest('a'))],
            mounts: Vec::new(),
        };
        let parsed = cross_check(&m, ok).unwrap();
        assert_eq!(
            parsed.records[0].1.size(),
            10,
            "the manifest's descriptor is used"
        );
        let stray = CacheConfig {
            records: vec![record(&digest('b'))],
            mounts: Vec::new(),
        };
        assert!(
            cross_check(&m, stray)
                .unwrap_err()
                .contains("not in the cache manifest")
        );
        for diff_id in ["md5:x", "nonsense"] {
            let mut bad = record(&digest('a'));
            bad.diff_id = diff_id.into();
            let bad = CacheConfig {
                records: vec![bad],
                mounts: Vec::new(),
            };
            assert!(cross_check(&m, bad).unwrap_err().contains("not a sha256"));
        }
    }
}
