//! Garbage collection and prune.
//!
//! GC is mark-and-sweep. Roots: every image's config, manifest and layer
//! blobs (and the diff IDs of those layers, for unpacked directories), the
//! resources of unexpired leases, and, while any lease is active, all
//! content newer than the oldest active lease (in-flight builds write blobs
//! before they can name them). The sweep runs inside a write transaction,
//! so it cannot interleave with `put_image`, which checks its blobs under
//! the same lock. Unreferenced content written without a lease is fair
//! game, so builders and importers must hold a [`crate::Lease`]. Build cache
//! records are roots too: their layer blob and unpacked directory stay until
//! `kiln builder prune` drops the record.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use kiln_content::Digest;
use rusqlite::Connection;

use crate::Store;
use crate::error::{Result, io_err};
use crate::filter::PruneFilter;
use crate::fsutil::{mtime, now, remove_tree, tree_size};
use crate::images::delete_image_rows;
use crate::record::{ImageRecord, all_images};

/// What [`Store::gc`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Blobs deleted.
    pub blobs_removed: Vec<Digest>,
    /// Unpacked layer directories deleted (by diff ID or directory name).
    pub unpacked_removed: usize,
    /// Bytes freed, blobs plus directories plus abandoned ingest files.
    pub bytes_freed: u64,
}

/// What [`Store::prune`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Images deleted.
    pub removed: Vec<Digest>,
    /// Bytes freed by the GC that followed.
    pub bytes_reclaimed: u64,
}

/// File mtimes come from the kernel's coarse clock and lease times from the
/// fine one, both truncated to seconds: a blob written just after a lease
/// started on a second boundary can carry the previous second. Keeping a
/// little more than strictly needed is the safe side of that race.
const CLOCK_SLACK_SECS: i64 = 2;

/// What must survive a sweep.
pub(crate) struct Roots {
    pub(crate) blobs: HashSet<String>,
    pub(crate) diff_ids: HashSet<String>,
    /// Content modified at or after this Unix time is kept (active lease).
    protect_after: Option<i64>,
}

impl Roots {
    pub(crate) fn load(conn: &Connection, now: i64, tagged_only: bool) -> Result<Self> {
        let image_filter = if tagged_only {
            "WHERE id IN (SELECT image_id FROM tags)"
        } else {
            ""
        };
        let blobs = strings(
            conn,
            &format!(
                "SELECT id FROM images {image_filter} UNION SELECT manifest_digest FROM images {image_filter}
                 UNION SELECT layer_digest FROM image_layers WHERE image_id IN (SELECT id FROM images {image_filter})
                 UNION SELECT layer_digest FROM build_cache UNION {}",
                leased("blob")
            ),
            now,
        )?;
        let diff_ids = strings(
            conn,
            &format!(
                "SELECT l.diff_id FROM layers l JOIN image_layers il ON il.layer_digest = l.digest
                 WHERE il.image_id IN (SELECT id FROM images {image_filter})
                 UNION SELECT diff_id FROM build_cache UNION {}",
                leased("unpacked")
            ),
            now,
        )?;
        let protect_after = conn.query_row(
            "SELECT min(created_at) FROM leases WHERE expires_at > ?1",
            [now],
            |r| r.get(0),
        )?;
        Ok(Self {
            blobs,
            diff_ids,
            protect_after,
        })
    }

    pub(crate) fn keeps_blob(&self, d: &Digest, path: &Path) -> bool {
        self.blobs.contains(d.as_ref()) || self.recent(mtime(path))
    }

    fn keeps_unpacked(&self, diff_id: &str, last_used: i64) -> bool {
        self.diff_ids.contains(diff_id) || self.recent(last_used)
    }

    /// Modified while a lease was active: possibly in-flight work.
    pub(crate) fn recent(&self, t: i64) -> bool {
        self.protect_after
            .is_some_and(|after| t >= after.saturating_sub(CLOCK_SLACK_SECS))
    }
}

fn leased(kind: &str) -> String {
    format!(
        "SELECT r.key FROM lease_resources r JOIN leases l ON l.id = r.lease_id
         WHERE r.kind = '{kind}' AND l.expires_at > ?1"
    )
}

fn strings(conn: &Connection, sql: &str, now: i64) -> Result<HashSet<String>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([now], |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// An `unpacked` row.
pub(crate) struct UnpackedRow {
    pub(crate) diff_id: String,
    pub(crate) dir: String,
    pub(crate) size: u64,
    pub(crate) last_used: i64,
}

pub(crate) fn unpacked_rows(conn: &Connection) -> Result<Vec<UnpackedRow>> {
    let mut stmt = conn.prepare("SELECT diff_id, dir, size, last_used FROM unpacked")?;
    let rows = stmt.query_map([], |r| {
        Ok(UnpackedRow {
            diff_id: r.get(0)?,
            dir: r.get(1)?,
            size: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
            last_used: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

impl Store {
    /// Removes blobs and unpacked layers nothing references, expired leases
    /// and abandoned ingest files. Leased content is never touched.
    pub fn gc(&self) -> Result<GcReport> {
        self.write_tx(|tx| self.sweep(tx))
    }

    pub(crate) fn sweep(&self, tx: &Connection) -> Result<GcReport> {
        let now = now();
        tx.execute("DELETE FROM leases WHERE expires_at <= ?1", [now])?;
        let roots = Roots::load(tx, now, false)?;
        let mut report = GcReport::default();
        for d in self.content().list()? {
            let path = self.content().blob_path(&d);
            if roots.keeps_blob(&d, &path) {
                continue;
            }
            let size = self.content().size(&d).unwrap_or(0);
            match self.content().delete(&d) {
                Ok(()) | Err(kiln_content::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            report.bytes_freed += size;
            report.blobs_removed.push(d);
        }
        self.sweep_unpacked(tx, &roots, &mut report)?;
        report.bytes_freed += self.content().clean_ingest()?;
        Ok(report)
    }

    fn sweep_unpacked(&self, tx: &Connection, roots: &Roots, report: &mut GcReport) -> Result<()> {
        let rows = unpacked_rows(tx)?;
        let mut known = HashSet::new();
        for row in rows {
            let stale = !self.layers_dir().join(&row.dir).is_dir();
            if !stale && roots.keeps_unpacked(&row.diff_id, row.last_used) {
                known.insert(row.dir);
                continue;
            }
            remove_tree(&self.layers_dir().join(&row.dir))?;
            tx.execute("DELETE FROM unpacked WHERE diff_id = ?1", [&row.diff_id])?;
            report.bytes_freed += if stale { 0 } else { row.size };
            report.unpacked_removed += 1;
        }
        for path in self.orphan_dirs(&known)? {
            if roots.recent(mtime(&path)) {
                continue;
            }
            report.bytes_freed += tree_size(&path);
            remove_tree(&path)?;
            report.unpacked_removed += 1;
        }
        Ok(())
    }

    /// Entries of `layers/` whose name is not in `known`.
    pub(crate) fn orphan_dirs(&self, known: &HashSet<String>) -> Result<Vec<PathBuf>> {
        let dir = self.layers_dir();
        let entries = fs::read_dir(&dir).map_err(|e| io_err(e, "listing", &dir))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_err(e, "listing", &dir))?;
            if !known.contains(entry.file_name().to_string_lossy().as_ref()) {
                out.push(entry.path());
            }
        }
        out.sort();
        Ok(out)
    }

    /// Deletes dangling images (untagged, including build intermediates)
    /// selected by `filter`, then runs GC.
    pub fn prune(&self, filter: &PruneFilter) -> Result<PruneReport> {
        let removed = self.write_tx(|tx| {
            let doomed: Vec<ImageRecord> = all_images(tx)?
                .into_iter()
                .filter(|img| img.is_dangling() && filter.selects(img))
                .collect();
            for img in &doomed {
                delete_image_rows(tx, &img.id)?;
            }
            Ok(doomed.into_iter().map(|img| img.id).collect::<Vec<_>>())
        })?;
        let gc = self.gc()?;
        Ok(PruneReport {
            removed,
            bytes_reclaimed: gc.bytes_freed,
        })
    }
}
