//! The build step cache: cache key → the layer a step produced.
//!
//! The builder computes the keys (they describe a step's inputs); the store
//! only keeps the records, treats their layers as GC roots, and prunes them
//! (`kiln builder prune`). Records live in the `build_cache` table.

use std::collections::{BTreeMap, HashSet};

use kiln_content::Digest;
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::Store;
use crate::error::{Result, StoreError};
use crate::filter::{LabelFilter, parse_until};
use crate::fsutil::now;
use crate::images::delete_image_rows;
use crate::record::{parse_digest, to_i64};

/// One cached step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheRecord {
    /// The step's cache key (hex sha256).
    pub key: String,
    /// Diff ID of the layer the step produced.
    pub diff_id: Digest,
    /// Blob digest of that layer.
    pub layer_digest: Digest,
    /// Media type of the layer blob.
    pub media_type: String,
    /// Blob bytes.
    pub size: u64,
    /// The history `created` of the step, reused on a hit so images come out identical.
    pub created: String,
    /// Last time a build used the record, Unix seconds.
    pub last_used: i64,
    /// Display name of the stage that ran the step.
    pub stage: String,
    /// The instruction as the progress shows it.
    pub instruction: String,
    /// The stage's config labels, for `--filter label=`.
    pub labels: BTreeMap<String, String>,
}

/// A record as `kiln builder du` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    /// The record.
    pub record: CacheRecord,
    /// Whether a (non build-stage) image uses the layer: pruning frees nothing then.
    pub shared: bool,
}

/// Which records `kiln builder prune` removes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheFilter {
    /// `-a`: also records whose layer an image shares.
    pub all: bool,
    /// `label=` / `label!=` filters on the stage labels, ANDed.
    pub labels: Vec<LabelFilter>,
    /// `until=`: only records last used before this Unix time.
    pub until: Option<i64>,
    /// `--keep-storage`: stop once the cache is at most this many bytes.
    pub keep_storage: Option<u64>,
}

impl CacheFilter {
    /// Parses `label=`/`label!=`/`until=` filter strings.
    pub fn parse<S: AsRef<str>>(
        all: bool,
        filters: &[S],
        keep_storage: Option<u64>,
    ) -> Result<Self> {
        let mut f = Self {
            all,
            keep_storage,
            ..Self::default()
        };
        for raw in filters.iter().map(AsRef::as_ref) {
            let (key, value) = raw
                .split_once('=')
                .ok_or_else(|| StoreError::InvalidFilter(raw.to_string()))?;
            match key {
                "label" => f.labels.push(LabelFilter::parse(value, false)),
                "label!" => f.labels.push(LabelFilter::parse(value, true)),
                "until" => f.until = Some(parse_until(value, now())?),
                _ => return Err(StoreError::InvalidFilter(raw.to_string())),
            }
        }
        Ok(f)
    }

    fn selects(&self, entry: &CacheEntry) -> bool {
        (self.all || !entry.shared)
            && self.until.is_none_or(|t| entry.record.last_used < t)
            && self.labels.iter().all(|l| l.matches(&entry.record.labels))
    }
}

/// What [`Store::prune_cache`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CachePruneReport {
    /// Records removed.
    pub removed: Vec<CacheRecord>,
    /// Build-stage images removed with them (their results are build cache too).
    pub stage_images: Vec<Digest>,
    /// Bytes the GC that followed freed.
    pub bytes_freed: u64,
}

const COLUMNS: &str =
    "key, diff_id, layer_digest, media_type, size, created, last_used, stage, instruction, labels";

impl Store {
    /// The record of `key`, marked used, if there is one. The use time is
    /// written only when it moves (at most once a second), without fsync.
    pub fn cache_get(&self, key: &str) -> Result<Option<CacheRecord>> {
        let t = now();
        let Some(mut record) = cache_row(&self.conn(), key)? else {
            return Ok(None);
        };
        if record.last_used < t {
            let updated = self.light_tx(|tx| {
                Ok(tx.execute(
                    "UPDATE build_cache SET last_used = ?2 WHERE key = ?1 AND last_used < ?2",
                    params![key, t],
                )?)
            })?;
            if updated == 0 {
                // Replaced or pruned meanwhile: report what is there now.
                return cache_row(&self.conn(), key);
            }
            record.last_used = t;
        }
        Ok(Some(record))
    }

    /// Inserts or replaces the record of `record.key`. Its layer must be in
    /// the content store: checked under the write lock, so GC cannot take
    /// the blob between the check and the commit. A record stored exactly
    /// like this already is left as it is (no write). The commit is not
    /// fsynced (see `Store::light_tx`): a record lost in a power failure only
    /// makes its step run again, and the build's final image commit makes it
    /// durable.
    pub fn cache_put(&self, record: &CacheRecord) -> Result<()> {
        let labels = serde_json::to_string(&record.labels)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.light_tx(|tx| {
            if !self.content().contains(&record.layer_digest) {
                return Err(StoreError::MissingBlob(record.layer_digest.clone()));
            }
            if cache_row(tx, &record.key)?.as_ref() == Some(record) {
                return Ok(());
            }
            tx.execute(
                &format!(
                    "INSERT OR REPLACE INTO build_cache ({COLUMNS})
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                ),
                params![
                    record.key,
                    record.diff_id.as_ref(),
                    record.layer_digest.as_ref(),
                    record.media_type,
                    to_i64(record.size),
                    record.created,
                    record.last_used,
                    record.stage,
                    record.instruction,
                    labels,
                ],
            )?;
            Ok(())
        })
    }

    /// Every record, least recently used first, with whether an image shares its layer.
    pub fn cache_entries(&self) -> Result<Vec<CacheEntry>> {
        entries(&self.conn())
    }

    /// Removes the records `filter` selects (least recently used first, and
    /// with `keep_storage` only until the cache fits), the build-stage images
    /// built from their layers, then runs GC.
    pub fn prune_cache(&self, filter: &CacheFilter) -> Result<CachePruneReport> {
        let (removed, stage_images) = self.write_tx(|tx| {
            let doomed = doomed(&entries(tx)?, filter);
            for r in &doomed {
                tx.execute("DELETE FROM build_cache WHERE key = ?1", [&r.key])?;
            }
            let images = stage_images_of(tx, &doomed)?;
            for id in &images {
                delete_image_rows(tx, id)?;
            }
            Ok((doomed, images))
        })?;
        let gc = self.gc()?;
        Ok(CachePruneReport {
            removed,
            stage_images,
            bytes_freed: gc.bytes_freed,
        })
    }
}

/// The records to remove: all selected ones, or with a storage budget only
/// the oldest selected until the whole cache fits.
fn doomed(entries: &[CacheEntry], filter: &CacheFilter) -> Vec<CacheRecord> {
    let mut total: u64 = entries.iter().map(|e| e.record.size).sum();
    let mut out = Vec::new();
    for e in entries.iter().filter(|e| filter.selects(e)) {
        if filter.keep_storage.is_some_and(|keep| total <= keep) {
            break;
        }
        total = total.saturating_sub(e.record.size);
        out.push(e.record.clone());
    }
    out
}

/// Untagged build-stage images of the pruned records' stages that contain one of their layers.
fn stage_images_of(conn: &Connection, records: &[CacheRecord]) -> Result<Vec<Digest>> {
    let mut ids = HashSet::new();
    let mut stmt = conn.prepare(
        "SELECT DISTINCT i.id FROM images i JOIN image_layers il ON il.image_id = i.id
         WHERE i.intermediate AND i.stage = ?1 AND il.layer_digest = ?2
           AND i.id NOT IN (SELECT image_id FROM tags)",
    )?;
    for r in records {
        let rows = stmt.query_map(params![r.stage, r.layer_digest.as_ref()], |row| {
            row.get::<_, String>(0)
        })?;
        for id in rows {
            ids.insert(id?);
        }
    }
    let mut ids: Vec<String> = ids.into_iter().collect();
    ids.sort();
    ids.iter().map(|s| parse_digest(s)).collect()
}

pub(crate) fn entries(conn: &Connection) -> Result<Vec<CacheEntry>> {
    let shared: HashSet<String> = {
        let mut stmt = conn.prepare(
            "SELECT DISTINCT il.layer_digest FROM image_layers il JOIN images i ON i.id = il.image_id
             WHERE NOT i.intermediate OR i.id IN (SELECT image_id FROM tags)",
        )?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM build_cache ORDER BY last_used, key"
    ))?;
    let raws = stmt
        .query_map([], raw_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    raws.into_iter()
        .map(|raw| {
            let record = raw.into_record()?;
            let shared = shared.contains(record.layer_digest.as_ref());
            Ok(CacheEntry { record, shared })
        })
        .collect()
}

fn cache_row(conn: &Connection, key: &str) -> Result<Option<CacheRecord>> {
    let sql = format!("SELECT {COLUMNS} FROM build_cache WHERE key = ?1");
    let raw = conn.query_row(&sql, [key], raw_row).optional()?;
    raw.map(RawRecord::into_record).transpose()
}

/// Column values of a `build_cache` row, before interpretation.
struct RawRecord {
    key: String,
    diff_id: String,
    layer_digest: String,
    media_type: String,
    size: i64,
    created: String,
    last_used: i64,
    stage: String,
    instruction: String,
    labels: String,
}

fn raw_row(r: &Row<'_>) -> rusqlite::Result<RawRecord> {
    Ok(RawRecord {
        key: r.get(0)?,
        diff_id: r.get(1)?,
        layer_digest: r.get(2)?,
        media_type: r.get(3)?,
        size: r.get(4)?,
        created: r.get(5)?,
        last_used: r.get(6)?,
        stage: r.get(7)?,
        instruction: r.get(8)?,
        labels: r.get(9)?,
    })
}

impl RawRecord {
    fn into_record(self) -> Result<CacheRecord> {
        let labels = serde_json::from_str(&self.labels).map_err(|e| {
            StoreError::Corrupt(format!("labels of cache record {}: {e}", self.key))
        })?;
        Ok(CacheRecord {
            diff_id: parse_digest(&self.diff_id)?,
            layer_digest: parse_digest(&self.layer_digest)?,
            media_type: self.media_type,
            size: u64::try_from(self.size).unwrap_or(0),
            created: self.created,
            last_used: self.last_used,
            stage: self.stage,
            instruction: self.instruction,
            labels,
            key: self.key,
        })
    }
}
