//! Consistency check and repair.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use kiln_content::Digest;
use rusqlite::Connection;

use crate::Store;
use crate::error::{Result, io_err};
use crate::fsutil::{mtime, now, remove_tree};
use crate::gc::{Roots, unpacked_rows};
use crate::images::delete_image_rows;
use crate::record::parse_digest;

/// Age after which leftovers in `tmp/` are removed by repair.
const TMP_MAX_AGE_SECS: i64 = 3600;

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
    /// Directories under `layers/` with no metadata and no active lease
    /// that may still be filling them (orphan).
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

impl Store {
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
            orphan_unpacked: self
                .orphan_dirs(&known)?
                .into_iter()
                .filter(|p| !roots.recent(mtime(p)))
                .collect(),
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
