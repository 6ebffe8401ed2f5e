//! Step cache keys, BuildKit-style: a step is reused when everything it reads is unchanged.
//!
//! # Key scheme
//!
//! Keys chain. A stage starts from a *root*: the base image's manifest digest
//! (`FROM image`) or the constant [`SCRATCH_ROOT`] (`FROM scratch`), each hashed with the
//! build's `SOURCE_DATE_EPOCH` (the mtimes of the layers it makes), or the final key of the
//! stage it builds on (`FROM stage`). Each layer-making step's key is
//!
//! ```text
//! sha256( "kiln-step-v1" , parent key , kind , field… )
//! ```
//!
//! every part length-prefixed so no two field lists hash alike. The fields are the
//! instruction's definition after variable expansion:
//!
//! - RUN: argv (shell and heredocs resolved), a shebang script's body, the environment
//!   the command sees (ENV plus the ARGs in scope, so a changed ARG re-runs only the
//!   RUNs that have it in scope), user, working directory, network, security mode, the
//!   mounts as written, and for every bind mount the identity of its source (see
//!   below). Secrets and cache-mount *contents* never enter a key. Undeclared proxy
//!   build-args are not in the environment, so they stay out of keys too.
//! - COPY/ADD: sources, inline (heredoc) files, destination, working directory,
//!   `--chown`, `--chmod`, `--link`, `--parents`, `--exclude`, ADD's `--checksum` and
//!   `--unpack`, and the identity of the source.
//! - WORKDIR: the resolved directory and the user owning it.
//!
//! A source's identity is: for the build context, [`kiln_context::Context::checksum`]
//! over exactly the selected paths (contents and metadata, never mtimes, after
//! `.dockerignore`), served from the persisted [`HashCache`]; for `--from=<stage>`, the same
//! checksum over the selected paths in that stage's files (see [`crate::stage_sum`]), so a
//! stage change that leaves them alone leaves the step cached; for `--from=<image>`, the
//! image's manifest digest. A step whose
//! sources cannot be identified (a remote ADD URL, a source that does not exist) gets no
//! key and always runs, reporting its own error.
//!
//! Metadata instructions (ENV, LABEL, USER, ...) have no records: they only change the
//! config, and reach later keys through the fields above.
//!
//! Keys depend only on inputs, never on the store, so records carry over between stores:
//! [`crate::cache_export`] exports them (`--cache-to`) and a miss here falls back to the
//! imported ones (`--cache-from`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use kiln_context::{Context, HashCache, Selected};
use kiln_dockerfile::instructions::Source;
use kiln_image::oci_spec::image::MediaType;
use kiln_image::{LayerInfo, history_entry};
use kiln_store::{CacheRecord, LayerRecord};
use sha2::{Digest as _, Sha256};

use crate::engine::Shared;
use crate::error::{BuildError, Result};
use crate::metadata;
use crate::stage::StageRun;

/// The root key of `FROM scratch`.
pub(crate) const SCRATCH_ROOT: &str = "scratch";

/// Accumulates one step's key.
pub(crate) struct KeyBuilder(Sha256);

impl KeyBuilder {
    /// A key for a step of `kind` (`run`, `copy`, ...) on top of `parent`.
    pub fn new(parent: &str, kind: &str) -> Self {
        let mut k = Self(Sha256::new());
        k.field("kiln-step-v1").field(parent).field(kind);
        k
    }

    /// Adds one length-prefixed value.
    pub fn field(&mut self, value: &str) -> &mut Self {
        self.0.update((value.len() as u64).to_le_bytes());
        self.0.update(value.as_bytes());
        self
    }

    /// Adds a list, its length first, so adjacent lists cannot trade items.
    pub fn list<S: AsRef<str>>(&mut self, values: &[S]) -> &mut Self {
        self.field(&values.len().to_string());
        for v in values {
            self.field(v.as_ref());
        }
        self
    }

    /// The key, as lowercase hex.
    pub fn finish(self) -> String {
        hex::encode(self.0.finalize())
    }
}

/// Content checksums of the build context, memoised across builds in one file per
/// context directory under the store root.
pub(crate) struct ContextSums {
    cache: Mutex<HashCache>,
}

impl ContextSums {
    /// Opens the hash cache of `context` under `store_root/context-hashes`.
    pub fn open(store_root: &std::path::Path, context: &std::path::Path) -> Result<Self> {
        let dir = store_root.join("context-hashes");
        std::fs::create_dir_all(&dir).map_err(crate::error::io_err("creating", &dir))?;
        let canonical = context
            .canonicalize()
            .map_err(crate::error::io_err("resolving", context))?;
        let name = hex::encode(Sha256::digest(canonical.as_os_str().as_encoded_bytes()));
        Ok(Self {
            cache: Mutex::new(HashCache::open(dir.join(name))?),
        })
    }

    /// The checksum of what `patterns` select in `context`; `None` when a pattern
    /// selects nothing valid (the step then runs and reports the real error).
    pub fn checksum(&self, context: &Context, patterns: &[String]) -> Option<String> {
        let mut selected: Vec<Selected> = Vec::new();
        for p in patterns {
            selected.extend(context.select(p).ok()?);
        }
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        context.checksum(&selected, &mut cache).ok()
    }

    /// Persists the memo, so the next build reads only files that changed.
    pub fn save(&self) -> Result<()> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        Ok(cache.save()?)
    }
}

/// What a source is, for keys: see the module docs. `None` when it cannot be identified.
pub(crate) fn source_id(
    shared: &Shared<'_>,
    source: Option<&Source>,
    paths: &[String],
) -> Result<Option<String>> {
    Ok(match source {
        None => shared.sums.checksum(&shared.context, paths),
        Some(Source::Stage(i)) => crate::stage_sum::checksum(shared, *i, paths)?,
        Some(Source::Image(name)) => Some(shared.store.resolve(name)?.manifest_digest.to_string()),
    })
}

/// A record found for a step, with its layer unpacked.
pub(crate) struct Hit {
    record: CacheRecord,
    dir: PathBuf,
}

impl StageRun<'_, '_> {
    /// The usable record of `key`: cache allowed, record present, layer blob still stored
    /// (its unpacked directory is recreated from the blob if it went missing), else the record
    /// of an imported cache, made local.
    pub fn cached(&self, key: Option<&str>) -> Result<Option<Hit>> {
        let Some(key) = key.filter(|_| self.use_cache) else {
            return Ok(None);
        };
        let store = self.shared.store;
        let record = match store.cache_get(key)? {
            Some(r) if store.content().contains(&r.layer_digest) => r,
            _ => match crate::cache_export::imported_hit(self.shared, key)? {
                Some(r) => r,
                None => return Ok(None),
            },
        };
        // A concurrent prune may take the layer between the lookup and its use: protect it
        // first, and take a blob that went meanwhile as a miss.
        let lease = &self.shared.lease;
        match lease.protect_blob(&record.layer_digest) {
            Err(kiln_store::StoreError::MissingBlob(_)) => return Ok(None),
            other => other?,
        }
        lease.protect_unpacked(&record.diff_id)?;
        let layer = LayerRecord {
            digest: record.layer_digest.clone(),
            diff_id: record.diff_id.clone(),
            size: record.size,
            media_type: record.media_type.clone(),
        };
        let dir = self.shared.layers.lowers(&[layer])?.pop().ok_or_else(|| {
            BuildError::Invalid(format!("cached layer {} has no directory", record.diff_id))
        })?;
        Ok(Some(Hit { record, dir }))
    }

    /// Adds a cached step's layer and its recorded history entry: nothing runs, no blob is
    /// written, and the entry's `created` is the recorded one.
    pub fn reuse(&mut self, hit: Hit, created_by: &str) {
        let Hit { record, dir } = hit;
        let layer = LayerInfo {
            digest: record.layer_digest.clone(),
            diff_id: record.diff_id.clone(),
            size: record.size,
            media_type: MediaType::from(record.media_type.as_str()),
        };
        let entry = history_entry(created_by, Some(&record.created), false);
        self.builder.add_layer(layer, entry);
        self.lowers.push(dir);
        self.key = record.key.clone();
        self.records.push(record);
    }

    /// Records a step that ran, at once, so a later failure in the build keeps it.
    pub fn record(&mut self, key: &str, layer: &LayerInfo) -> Result<()> {
        let record = CacheRecord {
            key: key.to_string(),
            diff_id: layer.diff_id.clone(),
            layer_digest: layer.digest.clone(),
            media_type: layer.media_type.to_string(),
            size: layer.size,
            created: self.created().to_string(),
            last_used: chrono::Utc::now().timestamp(),
            stage: self.name.clone(),
            instruction: self.step_text.clone(),
            labels: self.labels(),
        };
        self.shared.store.cache_put(&record)?;
        self.records.push(record);
        Ok(())
    }

    /// Gives this stage's records the stage's final labels (a LABEL may follow the steps),
    /// which `kiln builder prune --filter label=` selects on.
    pub fn relabel_records(&mut self) -> Result<()> {
        let labels = self.labels();
        for record in &mut self.records {
            record.labels = labels.clone();
            self.shared.store.cache_put(record)?;
        }
        Ok(())
    }

    fn labels(&self) -> BTreeMap<String, String> {
        metadata::runtime(self.builder.config())
            .labels()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_delimited() {
        let key = |a: &[&str]| {
            let mut k = KeyBuilder::new("p", "run");
            k.list(a);
            k.finish()
        };
        assert_ne!(key(&["ab", "c"]), key(&["a", "bc"]));
        assert_ne!(key(&["a"]), key(&["a", ""]));
        assert_eq!(key(&["x"]), key(&["x"]));
    }

    #[test]
    fn parent_changes_key() {
        let a = KeyBuilder::new("p1", "run").finish();
        let b = KeyBuilder::new("p2", "run").finish();
        assert_ne!(a, b);
    }
}
