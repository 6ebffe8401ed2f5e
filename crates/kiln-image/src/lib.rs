//! OCI/Docker image model: references, config, manifest, index, canonical JSON.
//!
//! Pure data: no I/O beyond (de)serialisation, so every other crate can share
//! one definition of what an image is.

mod canonical;
mod config;
mod glob;
mod manifest;
pub mod media;
mod reference;

pub use canonical::{canonical_json, sha256_digest};
pub use config::{
    BUILDKIT_HISTORY_COMMENT, ConfigError, DockerConfigExt, HealthConfig, ImageConfig,
    config_digest, history_entry,
};
pub use glob::path_match;
pub use manifest::{
    BuiltImage, ImageBuilder, ImageError, LayerInfo, build_index, convert_manifest, descriptor_for,
    parse_index, parse_manifest,
};
pub use media::MediaFlavor;
pub use reference::{
    DEFAULT_DOMAIN, DEFAULT_TAG, Reference, ReferenceError, is_hex_identifier, is_valid_tag,
};

/// Re-exported so dependants name the same oci-spec types.
pub use oci_spec;
