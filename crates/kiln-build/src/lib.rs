//! The build engine behind `kiln build`: a multi-stage Dockerfile becomes images in the store,
//! the way BuildKit builds it (same files, config, history and layer structure).
//!
//! [`build`] parses and plans the Dockerfile, then runs the stages the target needs, independent
//! stages at the same time. Each filesystem step (RUN, COPY, ADD, WORKDIR) runs on an overlay
//! snapshot of the layers so far; its upper directory becomes the next layer, written once as a
//! blob and kept unpacked for the steps after it. Metadata instructions only edit the config.
//! Layer-making steps are content-addressed in the step cache (keys and records: see the
//! `cache` module): an unchanged step reuses its recorded layer instead of running, so an
//! unchanged rebuild runs nothing and yields the same image ID. [`cache_export`] carries the
//! step cache between stores: exported after a build, imported lazily by the next one.
//! [`import_rootfs`] makes base images from rootfs tarballs, like `docker import`.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = kiln_store::Store::open("/var/lib/kiln")?;
//! let req = kiln_build::BuildRequest {
//!     dockerfile: std::fs::read_to_string("app/Dockerfile")?,
//!     dockerfile_name: "Dockerfile".into(),
//!     context: "app".into(),
//!     tags: vec!["app:latest".into()],
//!     ..Default::default()
//! };
//! let mut progress = kiln_build::PlainProgress::new(std::io::stderr());
//! let result = kiln_build::build(&store, &req, &mut progress)?;
//! println!("{}", result.image.id);
//! # Ok(())
//! # }
//! ```

mod cache;
pub mod cache_export;
mod copy;
mod engine;
mod epoch;
mod error;
mod fetch;
mod import;
mod layers;
mod metadata;
mod mounts;
mod platform;
mod progress;
mod rootfs;
mod run;
mod secret;
mod stage;
mod stage_sum;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

pub use cache_export::{BuildCache, CacheSource};
pub use engine::build;
pub use epoch::SOURCE_DATE_EPOCH;
pub use error::{BuildError, Result};
pub use fetch::{FetchError, ImageFetcher};
pub use import::import_rootfs;
pub use kiln_executor::Network;
pub use kiln_layer::Compression;
pub use metadata::DEFAULT_SHELL;
pub use platform::parse_platform;
pub use progress::{
    BuildSummary, PlainProgress, Progress, StageSize, StepInfo, StepOutcome, format_size,
    size_lines,
};
pub use rootfs::{export_rootfs_dir, export_rootfs_tar};

use kiln_store::ImageRecord;

/// Which OCI runtime runs RUN steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runtime {
    /// libcontainer in a re-executed helper: `/proc/self/exe` (the `kiln` binary, which calls
    /// `kiln_executor::helper_main()` first thing) unless another helper binary is given.
    Libcontainer {
        /// A binary that calls `kiln_executor::helper_main()`.
        helper: Option<PathBuf>,
    },
    /// The `runc` binary (`PATH` lookup unless given).
    Runc {
        /// Path of the runc binary.
        binary: Option<PathBuf>,
    },
}

impl Default for Runtime {
    fn default() -> Self {
        Self::Libcontainer { helper: None }
    }
}

/// What to build, and how.
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    /// The Dockerfile's text.
    pub dockerfile: String,
    /// Its name in messages (`Dockerfile`, `app/Dockerfile`).
    pub dockerfile_name: String,
    /// Its path, when it is a file: a `<Dockerfile>.dockerignore` beside it wins over the
    /// context's `.dockerignore`.
    pub dockerfile_path: Option<PathBuf>,
    /// The build context directory.
    pub context: PathBuf,
    /// `--build-arg` values.
    pub build_args: BTreeMap<String, String>,
    /// `--target` stage; the last stage when `None`.
    pub target: Option<String>,
    /// `-t` references for the final image.
    pub tags: Vec<String>,
    /// `--label` values, added to the final image's config.
    pub labels: BTreeMap<String, String>,
    /// `--no-cache`: run every step (results are still recorded for later builds).
    pub no_cache: bool,
    /// `--no-cache-filter`: stages (by name, or `stage-N`) whose steps all run.
    pub no_cache_filter: Vec<String>,
    /// Stages run at the same time at most; 0 means no limit.
    pub jobs: usize,
    /// Network of RUN steps without `--network`.
    pub network: Network,
    /// Runtime for RUN steps.
    pub runtime: Runtime,
    /// `--pull`: fetch every FROM / `--from` image through `fetcher`, even those in the store.
    pub pull: bool,
    /// Fetches FROM / `--from` images the store lacks before any step runs; `None`: store only.
    pub fetcher: Option<Arc<dyn ImageFetcher>>,
    /// `--cache-from`: caches whose records steps may use, read lazily (see [`cache_export`]).
    pub cache_from: Vec<Arc<dyn CacheSource>>,
    /// `--secret` sources by id, for `RUN --mount=type=secret`: read only while a RUN runs,
    /// never written into a layer nor hashed into a cache key.
    pub secrets: BTreeMap<String, SecretSource>,
    /// `--platform` (`os/arch[/variant]`); `None`: the host's. Only stages that run nothing may
    /// target another platform than the host's.
    pub platform: Option<String>,
    /// `--compression` of the layers this build makes. A step served by the cache keeps the
    /// layer it recorded, whatever its compression (as BuildKit without `force-compression`).
    pub compression: Compression,
}

/// Where a `--secret` value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A file on the host (`src=FILE`).
    File(PathBuf),
    /// An environment variable of the kiln process (`env=VAR`).
    Env(String),
}

/// A stage built on the way to the target, stored as an intermediate image.
#[derive(Debug, Clone)]
pub struct BuiltStage {
    /// Stage index in the Dockerfile.
    pub index: usize,
    /// Display name (`builder`, `stage-1`).
    pub name: String,
    /// Its image in the store.
    pub image: ImageRecord,
}

/// What a successful build produced.
#[derive(Debug, Clone)]
pub struct BuildResult {
    /// The target's image, with the requested tags.
    pub image: ImageRecord,
    /// The other stages built, in stage order.
    pub stages: Vec<BuiltStage>,
    /// The step records the build wrote or used, for `--cache-to`.
    pub cache: BuildCache,
}

/// The current time as RFC 3339 UTC, as configs and history record it.
pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}
