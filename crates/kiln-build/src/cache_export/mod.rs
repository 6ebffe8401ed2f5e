//! The step cache outside the store: `--cache-to` exports a build's records and their layers
//! (plus, with `mounts=true`, the contents of its cache mounts) as an OCI layout or a registry
//! artifact; `--cache-from` imports one lazily, so an ephemeral CI runner starts warm.
//!
//! A cache is one OCI image manifest (see the `format` module): its config
//! ([`CONFIG_MEDIA_TYPE`]) lists the records (key, layer digest, diff ID, `created`, stage,
//! instruction, labels), its layers are the records' layer blobs and the mounts' tars. An
//! import reads only the manifest and config up front; a step whose key is not in the store
//! but is in an imported cache fetches that one layer (checked against its digest and, when
//! unpacked, its diff ID), records it in the store and is `CACHED`, with the recorded
//! `created`, so the image comes out identical. A layer that fails its checks is a warning
//! and a miss: the step runs; a wrong layer is never used.
//!
//! The registry transport lives with the caller (the engine has no registry client): it
//! implements [`CacheSource`] for imports and pushes what [`export_layout`] writes.

mod export;
mod format;
mod import;

use kiln_dockerfile::stages::Base;
use kiln_store::CacheRecord;

pub use export::{CacheExportOptions, CacheMode, export_dir, export_layout};
pub use format::CONFIG_MEDIA_TYPE;
pub use import::{CacheSource, LocalCache};
pub(crate) use import::{Exchange, imported_hit, note_cache_mount};

use crate::engine::Shared;
use crate::stage::StageOutput;

/// The layout file naming the cache manifest.
const INDEX_JSON: &str = "index.json";

/// What one build read from and wrote to the step cache: what `--cache-to` exports.
#[derive(Debug, Clone, Default)]
pub struct BuildCache {
    /// Every stage built, in stage order.
    pub stages: Vec<StageCache>,
    /// The cache mount ids the build's RUN steps name, sorted.
    pub mounts: Vec<String>,
}

/// One built stage's records.
#[derive(Debug, Clone)]
pub struct StageCache {
    /// Display name (`builder`, `stage-1`).
    pub name: String,
    /// Whether it is the target or a stage the target is built `FROM` (`mode=min` keeps those).
    pub in_target_chain: bool,
    /// The records its steps wrote or used.
    pub records: Vec<CacheRecord>,
}

/// The build's cache, from the stage results (`None`: not built).
pub(crate) fn collect(
    shared: &Shared<'_>,
    results: &[Option<std::sync::Arc<StageOutput>>],
) -> BuildCache {
    let chain = target_chain(shared);
    let stages = results
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.as_ref().map(|o| (i, o)))
        .map(|(i, o)| StageCache {
            name: o.name.clone(),
            in_target_chain: chain.contains(&i),
            records: o.records.clone(),
        })
        .collect();
    BuildCache {
        stages,
        mounts: shared.exchange.used_mounts(),
    }
}

/// The target and the stages it is built `FROM`, transitively.
fn target_chain(shared: &Shared<'_>) -> Vec<usize> {
    let mut chain = vec![shared.target];
    while let Some(Base::Stage(i)) = chain
        .last()
        .and_then(|&i| shared.df.stages.get(i))
        .map(|s| &s.base)
    {
        if chain.contains(i) {
            break;
        }
        chain.push(*i);
    }
    chain
}
