//! Garbage collection, prune, consistency check and disk usage.
//!
//! GC is mark-and-sweep. Roots: every image's config, manifest and layer
//! blobs (and the diff IDs of those layers, for unpacked directories), the
//! resources of unexpired leases, and, while any lease is active, all
//! content newer than the oldest active lease (in-flight builds write blobs
//! before they can name them). The sweep runs inside a write transaction,
//! so it cannot interleave with `put_image`, which checks its blobs under
//! the same lock.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use kiln_content::Digest;
use rusqlite::Connection;

use crate::Store;
use crate::error::{Result, io_err};
use crate::filter::PruneFilter;
use crate::fsutil::{mtime, now, remove_tree, tree_size};
use crate::images::{ImageRecord, all_images, delete_image_rows, parse_digest};

/// Age after which leftovers in `tmp/` are removed by repair.
const TMP_MAX_AGE_SECS: i64 = 3600;

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

/// Findings of [`Store::check`]; errors make [`CheckReport::is_ok`] false,
/// orphans are harmless leftovers of interrupted work.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Blobs re-hashed.
    pub blobs_checked: usize,
    /// Blobs whose content does not match their digest (error).
    pub corrupt_blobs: Vec<Digest>,
    /// (image ID, blob) pairs where the image needs a missing blob (error).
    pub missing_blobs: Vec<(Digest, Digest)>,
    /// SQLite integrity or foreign-key problems (error).
    pub db_errors: Vec<String>,
    /// Blobs nothing references (orphan).
    pub orphan_blobs: Vec<Digest>,
    /// Temp files in the content store's ingest directory (orphan unless a
    /// writer is live).
    pub ingest_files: usize,
    /// Directories under `layers/` with no metadata (orphan).
    pub orphan_unpacked: Vec<PathBuf>,
    /// Unpacked-layer rows whose directory is gone (orphan: GC deletes the
    /// directory before its row commits, and lookups ignore such rows).
    pub stale_unpacked: Vec<String>,
    /// Images removed by repair because their blobs were missing or corrupt.
    pub removed_images: Vec<Digest>,
    /// Whether repair ran; the findings above were then fixed.
    pub repaired: bool,
}

impl CheckReport {
    /// True when nothing is broken (orphans allowed).
    pub fn is_ok(&self) -> bool {
        self.corrupt_blobs.is_empty() && self.missing_blobs.is_empty() && self.db_errors.is_empty()
    }

    /// True when there are leftovers GC or repair would remove.
    pub fn has_orphans(&self) -> bool {
        !self.orphan_blobs.is_empty()
            || self.ingest_files > 0
            || !self.orphan_unpacked.is_empty()
            || !self.stale_unpacked.is_empty()
    }
}

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
    /// Build cache; owned by the builder, always zero here.
    pub build_cache: UsageLine,
    /// Unpacked layer directories.
    pub unpacked: UsageLine,
}

/// What must survive a sweep.
struct Roots {
    blobs: HashSet<String>,
    diff_ids: HashSet<String>,
    /// Content modified at or after this Unix time is kept (active lease).
    protect_after: Option<i64>,
}

impl Roots {
    fn load(conn: &Connection, now: i64, tagged_only: bool) -> Result<Self> {
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
                 UNION {}",
                leased("blob")
            ),
            now,
        )?;
        let diff_ids = strings(
            conn,
            &format!(
                "SELECT l.diff_id FROM layers l JOIN image_layers il ON il.layer_digest = l.digest
                 WHERE il.image_id IN (SELECT id FROM images {image_filter}) UNION {}",
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

    fn keeps_blob(&self, d: &Digest, path: &Path) -> bool {
        self.blobs.contains(d.as_ref()) || self.recent(mtime(path))
    }

    fn keeps_unpacked(&self, diff_id: &str, last_used: i64) -> bool {
        self.diff_ids.contains(diff_id) || self.recent(last_used)
    }

    fn recent(&self, t: i64) -> bool {
        self.protect_after.is_some_and(|after| t >= after)
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
struct UnpackedRow {
    diff_id: String,
    dir: String,
    size: u64,
    last_used: i64,
}

fn unpacked_rows(conn: &Connection) -> Result<Vec<UnpackedRow>> {
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

    fn sweep(&self, tx: &Connection) -> Result<GcReport> {
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
    fn orphan_dirs(&self, known: &HashSet<String>) -> Result<Vec<PathBuf>> {
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

    /// Verifies every blob and every metadata reference; with `repair`,
    /// removes corrupt blobs, images that cannot be served, stale rows and
    /// all orphans.
    pub fn check(&self, repair: bool) -> Result<CheckReport> {
        let mut report = self.inspect()?;
        if repair {
            self.repair(&mut report)?;
        }
        Ok(report)
    }

    /// Re-hashes blobs without holding the lock (slow), then inspects
    /// metadata under the write lock so concurrent removal and GC cannot
    /// produce false reports.
    fn inspect(&self) -> Result<CheckReport> {
        let blobs = self.content().list()?;
        let corrupt = blobs
            .iter()
            .filter(|d| {
                matches!(
                    self.content().verify(d),
                    Err(kiln_content::Error::DigestMismatch { .. })
                )
            })
            .cloned()
            .collect();
        let mut report = self.write_tx(|tx| self.inspect_metadata(tx))?;
        report.blobs_checked = blobs.len();
        report.corrupt_blobs = corrupt;
        Ok(report)
    }

    fn inspect_metadata(&self, conn: &Connection) -> Result<CheckReport> {
        let roots = Roots::load(conn, now(), false)?;
        let orphan_blobs = self
            .content()
            .list()?
            .into_iter()
            .filter(|d| !roots.keeps_blob(d, &self.content().blob_path(d)))
            .collect();
        let rows = unpacked_rows(conn)?;
        let layers = self.layers_dir();
        let stale_unpacked = rows
            .iter()
            .filter(|r| !layers.join(&r.dir).is_dir())
            .map(|r| r.diff_id.clone())
            .collect();
        let known = rows.into_iter().map(|r| r.dir).collect();
        Ok(CheckReport {
            db_errors: db_errors(conn)?,
            missing_blobs: self.missing_blobs(conn)?,
            orphan_blobs,
            ingest_files: count_entries(&self.content().root().join("ingest")),
            orphan_unpacked: self.orphan_dirs(&known)?,
            stale_unpacked,
            ..CheckReport::default()
        })
    }

    fn missing_blobs(&self, conn: &Connection) -> Result<Vec<(Digest, Digest)>> {
        let mut stmt = conn.prepare(
            "SELECT id, id FROM images UNION ALL SELECT id, manifest_digest FROM images
             UNION ALL SELECT image_id, layer_digest FROM image_layers",
        )?;
        let pairs = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut missing = Vec::new();
        for pair in pairs {
            let (image, blob) = pair?;
            let blob = parse_digest(&blob)?;
            if !self.content().contains(&blob) {
                missing.push((parse_digest(&image)?, blob));
            }
        }
        Ok(missing)
    }

    fn repair(&self, report: &mut CheckReport) -> Result<()> {
        let corrupt: HashSet<&Digest> = report.corrupt_blobs.iter().collect();
        for d in &corrupt {
            match self.content().delete(d) {
                Ok(()) | Err(kiln_content::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        report.removed_images = self.write_tx(|tx| {
            let broken = self.missing_blobs(tx)?;
            let ids: HashSet<Digest> = broken.into_iter().map(|(id, _)| id).collect();
            for id in &ids {
                delete_image_rows(tx, id)?;
            }
            self.sweep(tx)?;
            Ok(ids.into_iter().collect())
        })?;
        self.remove_old_tmp()?;
        report.repaired = true;
        Ok(())
    }

    /// Removes scratch entries left by killed processes.
    fn remove_old_tmp(&self) -> Result<()> {
        let dir = self.root().join("tmp");
        let entries = fs::read_dir(&dir).map_err(|e| io_err(e, "listing", &dir))?;
        let cutoff = now() - TMP_MAX_AGE_SECS;
        for entry in entries.flatten() {
            if mtime(&entry.path()) < cutoff {
                remove_tree(&entry.path())?;
            }
        }
        Ok(())
    }

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
            build_cache: UsageLine::default(),
            unpacked: UsageLine {
                count: rows.len(),
                size: unpacked_total,
                reclaimable: unpacked_total.saturating_sub(unpacked_kept),
            },
        })
    }
}

fn db_errors(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn.prepare("PRAGMA integrity_check")?;
    let mut errors: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?
        .into_iter()
        .filter(|s| s != "ok")
        .collect();
    let mut fk = conn.prepare("PRAGMA foreign_key_check")?;
    let violations = fk.query_map([], |r| r.get::<_, String>(0))?;
    for table in violations {
        errors.push(format!("foreign key violation in table {}", table?));
    }
    Ok(errors)
}

fn count_entries(dir: &Path) -> usize {
    fs::read_dir(dir).map(|e| e.count()).unwrap_or(0)
}
