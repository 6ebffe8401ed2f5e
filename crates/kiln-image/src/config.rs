//! Image configuration: oci-spec's [`ImageConfiguration`] plus the Docker
//! fields it lacks.
//!
//! oci-spec 0.10's `Config` knows only User, ExposedPorts, Env, Entrypoint,
//! Cmd, Volumes, WorkingDir, Labels and StopSignal. Docker images also carry
//! `Healthcheck`, `OnBuild`, `Shell` and `ArgsEscaped` inside `config`, and
//! top-level keys such as `container_config` or `docker_version`. Those are
//! kept in [`DockerConfigExt`] and [`ImageConfig::extra`] so a config read
//! from a Docker image serialises back with the same content.

use std::collections::BTreeMap;

use oci_spec::image::{Config, Digest, History, ImageConfiguration};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::canonical::{canonical_json, sha256_digest};

/// Top-level keys oci-spec's `ImageConfiguration` models.
const OCI_TOP_KEYS: &[&str] = &[
    "created",
    "author",
    "architecture",
    "os",
    "os.version",
    "os.features",
    "variant",
    "config",
    "rootfs",
    "history",
];

/// Keys of `config` that oci-spec's `Config` models.
const OCI_CONFIG_KEYS: &[&str] = &[
    "User",
    "ExposedPorts",
    "Env",
    "Entrypoint",
    "Cmd",
    "Volumes",
    "WorkingDir",
    "Labels",
    "StopSignal",
];

/// BuildKit's history comment for Dockerfile instructions.
pub const BUILDKIT_HISTORY_COMMENT: &str = "buildkit.dockerfile.v0";

/// Docker's `HEALTHCHECK` settings; durations are nanoseconds as in Docker.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    /// `["NONE"]`, `["CMD", ...]` or `["CMD-SHELL", cmd]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Vec<String>>,
    /// Time between checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
    /// Time before a check is considered hung.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    /// Grace period after start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<i64>,
    /// Check interval during the start period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<i64>,
    /// Consecutive failures before unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
}

/// Docker-only keys of the `config` object, absent from oci-spec 0.10.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DockerConfigExt {
    /// `HEALTHCHECK`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    /// `ONBUILD` triggers, run by images built `FROM` this one.
    #[serde(default, rename = "OnBuild", skip_serializing_if = "Option::is_none")]
    pub on_build: Option<Vec<String>>,
    /// `SHELL` used by shell-form instructions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
    /// Windows-only escaping hint Docker still writes on Linux images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args_escaped: Option<bool>,
    /// Any other unknown `config` key (e.g. `Hostname`, `Image`), kept verbatim.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

impl DockerConfigExt {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// An image config as stored in a blob: the OCI part plus Docker extras.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImageConfig {
    /// Fields oci-spec models.
    pub oci: ImageConfiguration,
    /// Docker-only keys of `config`.
    pub docker: DockerConfigExt,
    /// Unknown top-level keys (`container_config`, `docker_version`, ...).
    pub extra: BTreeMap<String, Value>,
}

/// Failure to read or write an image config.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The JSON does not describe an image config.
    #[error("invalid image config: {0}")]
    Json(#[from] serde_json::Error),
    /// The JSON is valid but not an object.
    #[error("invalid image config: expected a JSON object")]
    NotAnObject,
}

impl ImageConfig {
    /// Parses a config blob.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ConfigError> {
        Ok(serde_json::from_slice(bytes)?)
    }

    /// Canonical bytes of the config blob and their digest (the image ID).
    pub fn to_blob(&self) -> Result<(Vec<u8>, Digest), ConfigError> {
        let bytes = canonical_json(self)?;
        let digest = sha256_digest(&bytes);
        Ok((bytes, digest))
    }

    /// Edits the runtime `config` section, creating it when missing.
    ///
    /// oci-spec has no `config_mut`, so the section is copied, edited and
    /// stored back.
    pub fn update_runtime(&mut self, edit: impl FnOnce(&mut Config)) {
        let mut config = self.oci.config().clone().unwrap_or_default();
        edit(&mut config);
        self.oci.set_config(Some(config));
    }

    /// Image labels (`config.Labels`), sorted.
    pub fn labels(&self) -> BTreeMap<String, String> {
        self.oci
            .config()
            .as_ref()
            .and_then(|c| c.labels().clone())
            .map(|l| l.into_iter().collect())
            .unwrap_or_default()
    }

    /// History entries (empty when absent).
    pub fn history(&self) -> &[History] {
        self.oci.history().as_deref().unwrap_or_default()
    }
}

/// Digest of a config's canonical JSON: the image ID.
pub fn config_digest(config: &ImageConfig) -> Result<Digest, ConfigError> {
    Ok(config.to_blob()?.1)
}

/// A history entry the way BuildKit writes one for a Dockerfile instruction.
pub fn history_entry(created_by: &str, created: Option<&str>, empty_layer: bool) -> History {
    let mut h = History::default();
    h.set_created_by(Some(created_by.to_string()));
    h.set_created(created.map(str::to_string));
    h.set_comment(Some(BUILDKIT_HISTORY_COMMENT.to_string()));
    h.set_empty_layer(empty_layer.then_some(true));
    h
}

impl Serialize for ImageConfig {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut top = match serde_json::to_value(&self.oci).map_err(serde::ser::Error::custom)? {
            Value::Object(map) => map,
            _ => return Err(serde::ser::Error::custom("image config is not an object")),
        };
        if !self.docker.is_empty() {
            merge_docker_ext(&mut top, &self.docker).map_err(serde::ser::Error::custom)?;
        }
        for (k, v) in &self.extra {
            top.entry(k.clone()).or_insert_with(|| v.clone());
        }
        Value::Object(top).serialize(serializer)
    }
}

fn merge_docker_ext(
    top: &mut Map<String, Value>,
    ext: &DockerConfigExt,
) -> Result<(), serde_json::Error> {
    let ext = match serde_json::to_value(ext)? {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    let slot = top
        .entry("config")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(config) = slot {
        for (k, v) in ext {
            config.entry(k).or_insert(v);
        }
    }
    Ok(())
}

impl<'de> Deserialize<'de> for ImageConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let Value::Object(mut top) = Value::deserialize(deserializer)? else {
            return Err(serde::de::Error::custom(ConfigError::NotAnObject));
        };
        let extra = take_unknown(&mut top, OCI_TOP_KEYS);
        let docker = match top.get_mut("config") {
            Some(Value::Object(config)) => {
                let unknown = take_unknown(config, OCI_CONFIG_KEYS);
                let unknown: Map<String, Value> = unknown.into_iter().collect();
                serde_json::from_value(Value::Object(unknown)).map_err(serde::de::Error::custom)?
            }
            _ => DockerConfigExt::default(),
        };
        let oci = serde_json::from_value(Value::Object(top)).map_err(serde::de::Error::custom)?;
        Ok(Self { oci, docker, extra })
    }
}

/// Removes and returns every key of `map` not listed in `known`.
fn take_unknown(map: &mut Map<String, Value>, known: &[&str]) -> BTreeMap<String, Value> {
    let unknown: Vec<String> = map
        .keys()
        .filter(|k| !known.contains(&k.as_str()))
        .cloned()
        .collect();
    unknown
        .into_iter()
        .filter_map(|k| map.remove(&k).map(|v| (k, v)))
        .collect()
}
