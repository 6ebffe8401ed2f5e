//! Manifests and indexes, and a builder that stacks layers onto a config.

use oci_spec::OciSpecError;
use oci_spec::image::{
    Arch, Descriptor, Digest, History, ImageIndex, ImageIndexBuilder, ImageManifest,
    ImageManifestBuilder, MediaType, Os, RootFs,
};

use crate::canonical::{canonical_json, sha256_digest};
use crate::config::{ConfigError, ImageConfig};
use crate::media::{MediaFlavor, convert};

/// Failure to assemble or parse manifests.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The config could not be serialised or parsed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A manifest or index is not valid JSON for its type.
    #[error("invalid manifest JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// oci-spec refused to build a document.
    #[error("invalid manifest: {0}")]
    Spec(#[from] OciSpecError),
    /// Manifest layers and config `rootfs.diff_ids` disagree in count.
    #[error("manifest lists {layers} layers but the config has {diff_ids} diff_ids")]
    LayerMismatch {
        /// Layers in the manifest.
        layers: usize,
        /// Diff IDs in the config.
        diff_ids: usize,
    },
}

/// A layer blob to append: compressed digest and size, uncompressed diff ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    /// Digest of the blob as stored (compressed).
    pub digest: Digest,
    /// Digest of the uncompressed tar (`rootfs.diff_ids` entry).
    pub diff_id: Digest,
    /// Blob size in bytes.
    pub size: u64,
    /// Blob media type.
    pub media_type: MediaType,
}

/// An image ready to write: config and manifest bytes with their digests.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    /// Canonical config JSON.
    pub config_bytes: Vec<u8>,
    /// Descriptor of the config blob; its digest is the image ID.
    pub config_descriptor: Descriptor,
    /// The manifest.
    pub manifest: ImageManifest,
    /// Canonical manifest JSON.
    pub manifest_bytes: Vec<u8>,
    /// Descriptor of the manifest blob.
    pub manifest_descriptor: Descriptor,
}

/// Stacks layers and history entries onto a base image, keeping manifest
/// layers, `rootfs.diff_ids` and history in step.
#[derive(Debug, Clone)]
pub struct ImageBuilder {
    config: ImageConfig,
    layers: Vec<Descriptor>,
}

impl ImageBuilder {
    /// Starts from an existing image (a `FROM` base).
    pub fn new(config: ImageConfig, layers: Vec<Descriptor>) -> Result<Self, ImageError> {
        let diff_ids = config.oci.rootfs().diff_ids().len();
        if diff_ids != layers.len() {
            return Err(ImageError::LayerMismatch {
                layers: layers.len(),
                diff_ids,
            });
        }
        Ok(Self { config, layers })
    }

    /// Starts from `scratch`: no layers, no history.
    pub fn scratch(os: Os, architecture: Arch) -> Self {
        let mut config = ImageConfig::default();
        config.oci.set_os(os);
        config.oci.set_architecture(architecture);
        config.oci.set_rootfs(RootFs::default());
        Self {
            config,
            layers: Vec::new(),
        }
    }

    /// The config being built.
    pub fn config(&self) -> &ImageConfig {
        &self.config
    }

    /// Mutable access for instructions such as `ENV` or `LABEL`.
    pub fn config_mut(&mut self) -> &mut ImageConfig {
        &mut self.config
    }

    /// Manifest layers so far.
    pub fn layers(&self) -> &[Descriptor] {
        &self.layers
    }

    /// Appends a filesystem layer and its history entry.
    pub fn add_layer(&mut self, layer: LayerInfo, mut history: History) {
        history.set_empty_layer(None);
        self.config
            .oci
            .rootfs_mut()
            .diff_ids_mut()
            .push(layer.diff_id.to_string());
        self.layers
            .push(Descriptor::new(layer.media_type, layer.size, layer.digest));
        self.push_history(history);
    }

    /// Appends a history entry for an instruction that changed only
    /// metadata (`empty_layer: true`, as BuildKit writes it).
    pub fn add_empty_layer(&mut self, mut history: History) {
        history.set_empty_layer(Some(true));
        self.push_history(history);
    }

    fn push_history(&mut self, history: History) {
        self.config
            .oci
            .history_mut()
            .get_or_insert_with(Vec::new)
            .push(history);
    }

    /// Serialises config and manifest in `flavor`'s media types.
    pub fn build(&self, flavor: MediaFlavor) -> Result<BuiltImage, ImageError> {
        let (config_bytes, config_digest) = self.config.to_blob()?;
        let config_media = convert(&MediaType::ImageConfig, flavor);
        let config_descriptor =
            Descriptor::new(config_media, config_bytes.len() as u64, config_digest);
        let layers = self
            .layers
            .iter()
            .map(|l| with_media_type(l, convert(l.media_type(), flavor)))
            .collect::<Vec<_>>();
        let manifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(convert(&MediaType::ImageManifest, flavor))
            .config(config_descriptor.clone())
            .layers(layers)
            .build()?;
        let manifest_bytes = canonical_json(&manifest)?;
        let manifest_descriptor = descriptor_for(manifest.media_type().clone(), &manifest_bytes);
        Ok(BuiltImage {
            config_bytes,
            config_descriptor,
            manifest,
            manifest_bytes,
            manifest_descriptor,
        })
    }
}

/// Descriptor of `bytes` with `media_type` (defaults to the OCI manifest type).
pub fn descriptor_for(media_type: Option<MediaType>, bytes: &[u8]) -> Descriptor {
    let media = media_type.unwrap_or(MediaType::ImageManifest);
    Descriptor::new(media, bytes.len() as u64, sha256_digest(bytes))
}

fn with_media_type(d: &Descriptor, media: MediaType) -> Descriptor {
    let mut out = d.clone();
    out.set_media_type(media);
    out
}

/// Rewrites a manifest's own, config and layer media types to `flavor`.
/// The config blob is unchanged, so the image ID stays the same.
pub fn convert_manifest(manifest: &ImageManifest, flavor: MediaFlavor) -> ImageManifest {
    let mut out = manifest.clone();
    let own = manifest
        .media_type()
        .clone()
        .unwrap_or(MediaType::ImageManifest);
    out.set_media_type(Some(convert(&own, flavor)));
    out.set_config(with_media_type(
        manifest.config(),
        convert(manifest.config().media_type(), flavor),
    ));
    let layers = manifest
        .layers()
        .iter()
        .map(|l| with_media_type(l, convert(l.media_type(), flavor)))
        .collect();
    out.set_layers(layers);
    out
}

/// An index listing `manifests` (each should carry its platform).
pub fn build_index(
    manifests: Vec<Descriptor>,
    flavor: MediaFlavor,
) -> Result<ImageIndex, ImageError> {
    Ok(ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(convert(&MediaType::ImageIndex, flavor))
        .manifests(manifests)
        .build()?)
}

/// Parses a manifest blob (OCI or Docker v2 schema 2).
pub fn parse_manifest(bytes: &[u8]) -> Result<ImageManifest, ImageError> {
    Ok(serde_json::from_slice(bytes)?)
}

/// Parses an index / manifest-list blob.
pub fn parse_index(bytes: &[u8]) -> Result<ImageIndex, ImageError> {
    Ok(serde_json::from_slice(bytes)?)
}
