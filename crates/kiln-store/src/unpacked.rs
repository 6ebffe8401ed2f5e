//! Unpacked layer directories under `layers/`, one per diff ID, shared by
//! every image that has the layer.

use std::fs;
use std::path::{Path, PathBuf};

use kiln_content::Digest;
use rusqlite::{OptionalExtension, params};

use crate::Store;
use crate::error::{Result, StoreError, io_err};
use crate::fsutil::{now, remove_tree};
use crate::record::{parse_digest, to_i64};

/// A layer unpacked on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackedLayer {
    /// Diff ID of the layer.
    pub diff_id: Digest,
    /// Directory holding the layer's files.
    pub path: PathBuf,
    /// Bytes recorded when it was added.
    pub size: u64,
    /// Last use, Unix seconds.
    pub last_used: i64,
}

impl Store {
    /// Directory name used for a diff ID.
    fn unpacked_name(diff_id: &Digest) -> String {
        format!("{}-{}", diff_id.algorithm(), diff_id.digest())
    }

    /// Moves a fully unpacked directory `src` (under [`Store::tmp_dir`]) into
    /// place for `diff_id`. If another process got there first, `src` is
    /// discarded and the existing directory returned.
    ///
    /// The rename happens inside the write transaction, so GC never sees the
    /// directory without its row; a crash in between leaves an orphan
    /// directory that GC removes. The commit is not fsynced (see
    /// `Store::light_tx`): the directory is a cache that is never synced
    /// itself, and a row lost in a power failure makes it an orphan that is
    /// unpacked again when needed.
    pub fn add_unpacked(&self, diff_id: &Digest, src: &Path, size: u64) -> Result<UnpackedLayer> {
        let name = Self::unpacked_name(diff_id);
        let target = self.layers_dir().join(&name);
        let t = now();
        self.light_tx(|tx| {
            let exists: Option<String> = tx
                .query_row("SELECT dir FROM unpacked WHERE diff_id = ?1", [diff_id.as_ref()], |r| r.get(0))
                .optional()?;
            if exists.is_some() && target.is_dir() {
                remove_tree(src)?;
                tx.execute("UPDATE unpacked SET last_used = ?2 WHERE diff_id = ?1", params![diff_id.as_ref(), t])?;
                return Ok(());
            }
            remove_tree(&target)?;
            fs::rename(src, &target).map_err(|e| io_err(e, "moving unpacked layer to", &target))?;
            tx.execute(
                "INSERT OR REPLACE INTO unpacked (diff_id, dir, size, last_used) VALUES (?1, ?2, ?3, ?4)",
                params![diff_id.as_ref(), name, to_i64(size), t],
            )?;
            Ok(())
        })?;
        self.unpacked(diff_id)?
            .ok_or_else(|| StoreError::Corrupt(format!("unpacked layer {diff_id} vanished")))
    }

    /// The unpacked directory of `diff_id`, if any; marks it used. The use
    /// time is written only when it moves (at most once a second), without
    /// fsync: it only steers GC and pruning.
    pub fn unpacked(&self, diff_id: &Digest) -> Result<Option<UnpackedLayer>> {
        let t = now();
        let Some(mut row) = unpacked_row(&self.conn(), diff_id)? else {
            return Ok(None);
        };
        if row.3 < t {
            self.light_tx(|tx| {
                tx.execute(
                    "UPDATE unpacked SET last_used = ?2 WHERE diff_id = ?1 AND last_used < ?2",
                    params![diff_id.as_ref(), t],
                )?;
                Ok(())
            })?;
            row.3 = t;
        }
        let (diff_id, dir, size, last_used) = row;
        let path = self.layers_dir().join(dir);
        if !path.is_dir() {
            return Ok(None);
        }
        Ok(Some(UnpackedLayer {
            diff_id: parse_digest(&diff_id)?,
            path,
            size: u64::try_from(size).unwrap_or(0),
            last_used,
        }))
    }
}

/// The `unpacked` row of `diff_id`: diff ID, directory name, size, last use.
fn unpacked_row(
    conn: &rusqlite::Connection,
    diff_id: &Digest,
) -> Result<Option<(String, String, i64, i64)>> {
    Ok(conn
        .query_row(
            "SELECT diff_id, dir, size, last_used FROM unpacked WHERE diff_id = ?1",
            [diff_id.as_ref()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?)
}
