//! Media types: OCI by default, Docker v2 schema 2 for docker-archive and
//! registries that predate OCI.

use oci_spec::image::MediaType;

/// Docker v2 schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list (the Docker counterpart of an OCI index).
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker gzip-compressed layer.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker uncompressed layer.
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// Docker zstd-compressed layer (as containerd names it).
pub const DOCKER_LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";
/// Docker foreign (non-distributable) gzip layer.
pub const DOCKER_LAYER_FOREIGN_GZIP: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

/// Which family of media types an image is written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MediaFlavor {
    /// `application/vnd.oci.*` (the default, as BuildKit's OCI exporter).
    #[default]
    Oci,
    /// `application/vnd.docker.*` (docker-archive, `docker load`).
    Docker,
}

/// OCI ↔ Docker pairs; every entry converts both ways.
const PAIRS: &[(MediaType, &str)] = &[
    (MediaType::ImageManifest, DOCKER_MANIFEST),
    (MediaType::ImageIndex, DOCKER_MANIFEST_LIST),
    (MediaType::ImageConfig, DOCKER_CONFIG),
    (MediaType::ImageLayerGzip, DOCKER_LAYER_GZIP),
    (MediaType::ImageLayer, DOCKER_LAYER_TAR),
    (MediaType::ImageLayerZstd, DOCKER_LAYER_ZSTD),
    (
        MediaType::ImageLayerNonDistributableGzip,
        DOCKER_LAYER_FOREIGN_GZIP,
    ),
];

/// Converts `media` to `flavor`; types without a counterpart (and types
/// already in `flavor`) are returned unchanged.
pub fn convert(media: &MediaType, flavor: MediaFlavor) -> MediaType {
    let found = PAIRS
        .iter()
        .find(|(oci, docker)| oci == media || media.as_ref() == *docker);
    match (found, flavor) {
        (Some((oci, _)), MediaFlavor::Oci) => oci.clone(),
        (Some((_, docker)), MediaFlavor::Docker) => MediaType::Other((*docker).to_string()),
        (None, _) => media.clone(),
    }
}

/// The flavor a media type belongs to, if it is one kiln knows.
pub fn flavor_of(media: &MediaType) -> Option<MediaFlavor> {
    PAIRS.iter().find_map(|(oci, docker)| {
        if oci == media {
            Some(MediaFlavor::Oci)
        } else if media.as_ref() == *docker {
            Some(MediaFlavor::Docker)
        } else {
            None
        }
    })
}

/// True for any layer media type (OCI or Docker, any compression).
pub fn is_layer(media: &MediaType) -> bool {
    let s = media.as_ref();
    s.starts_with("application/vnd.oci.image.layer.")
        || s.starts_with("application/vnd.docker.image.rootfs.")
}

/// True for manifest media types (single-platform image manifests).
pub fn is_manifest(media: &MediaType) -> bool {
    matches!(convert(media, MediaFlavor::Oci), MediaType::ImageManifest)
}

/// True for index / manifest-list media types.
pub fn is_index(media: &MediaType) -> bool {
    matches!(convert(media, MediaFlavor::Oci), MediaType::ImageIndex)
}
