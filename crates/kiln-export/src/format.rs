//! File names, annotation keys and the `manifest.json` entry shared by the
//! readers and writers of both archive formats.

use serde::{Deserialize, Serialize};

/// docker-archive image list.
pub(crate) const MANIFEST_JSON: &str = "manifest.json";
/// Legacy docker-archive tag map.
pub(crate) const REPOSITORIES: &str = "repositories";
/// OCI image layout entry point.
pub(crate) const INDEX_JSON: &str = "index.json";
/// OCI image layout marker file and its content.
pub(crate) const OCI_LAYOUT: &str = "oci-layout";
pub(crate) const OCI_LAYOUT_CONTENT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
/// Full image name, as containerd and docker ≥ 25 write it.
pub(crate) const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
/// The tag an OCI layout is addressed by (`oci-archive:FILE:TAG`).
pub(crate) const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Marks attestation manifests in BuildKit indexes; they are not images.
pub(crate) const ANNOTATION_REFERENCE_TYPE: &str = "vnd.docker.reference.type";

/// One image of a docker-archive `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DockerEntry {
    /// Path of the config JSON inside the archive.
    pub(crate) config: String,
    /// Familiar names (`busybox:latest`); `null` for untagged images.
    #[serde(default)]
    pub(crate) repo_tags: Option<Vec<String>>,
    /// Paths of the layer tars, base first.
    pub(crate) layers: Vec<String>,
}
