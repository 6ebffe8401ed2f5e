//! Disk usage (`kiln system df`).

use std::collections::{HashMap, HashSet};

use kiln_content::Digest;

use crate::Store;
use crate::cache::CacheEntry;
use crate::error::Result;
use crate::fsutil::now;
use crate::gc::{Roots, unpacked_rows};

/// One row of `kiln system df`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageLine {
    /// Number of items.
    pub count: usize,
    /// Bytes on disk.
    pub size: u64,
    /// Bytes that prune plus GC would free.
    pub reclaimable: u64,
}

/// `kiln system df`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DfReport {
    /// Images and all blobs of the content store.
    pub images: UsageLine,
    /// Build cache records: their layer blobs; reclaimable are those no image shares.
    pub build_cache: UsageLine,
    /// Unpacked layer directories.
    pub unpacked: UsageLine,
}

/// Distinct layers of the cache records: several keys may name one layer.
fn build_cache_usage(entries: &[CacheEntry]) -> UsageLine {
    let mut seen = HashSet::new();
    let mut line = UsageLine {
        count: entries.len(),
        ..UsageLine::default()
    };
    for e in entries {
        if !seen.insert(e.record.layer_digest.clone()) {
            continue;
        }
        line.size += e.record.size;
        if !e.shared {
            line.reclaimable += e.record.size;
        }
    }
    line
}

impl Store {
    /// Sizes of images and unpacked layers, and what prune + GC would free.
    pub fn disk_usage(&self) -> Result<DfReport> {
        let conn = self.conn();
        let now = now();
        let kept = Roots::load(&conn, now, true)?;
        let images: i64 = conn.query_row("SELECT count(*) FROM images", [], |r| r.get(0))?;
        let sizes: HashMap<Digest, u64> = self
            .content()
            .list()?
            .into_iter()
            .map(|d| {
                let size = self.content().size(&d).unwrap_or(0);
                (d, size)
            })
            .collect();
        let total: u64 = sizes.values().sum();
        let kept_bytes: u64 = sizes
            .iter()
            .filter(|(d, _)| kept.blobs.contains(d.as_ref()))
            .map(|(_, s)| s)
            .sum();
        let rows = unpacked_rows(&conn)?;
        let unpacked_total: u64 = rows.iter().map(|r| r.size).sum();
        let unpacked_kept: u64 = rows
            .iter()
            .filter(|r| kept.diff_ids.contains(&r.diff_id))
            .map(|r| r.size)
            .sum();
        Ok(DfReport {
            images: UsageLine {
                count: usize::try_from(images).unwrap_or(0),
                size: total,
                reclaimable: total.saturating_sub(kept_bytes),
            },
            build_cache: build_cache_usage(&crate::cache::entries(&conn)?),
            unpacked: UsageLine {
                count: rows.len(),
                size: unpacked_total,
                reclaimable: unpacked_total.saturating_sub(unpacked_kept),
            },
        })
    }
}
