//! Leases: in-flight builds and imports keep their content from GC.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kiln_content::Digest;
use rusqlite::params;

use crate::Store;
use crate::error::{Result, StoreError};
use crate::fsutil::now;

/// Distinguishes leases taken by one process within the same nanosecond.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Protects content from GC until released, dropped or expired.
///
/// While a lease is active, GC keeps every blob and unpacked layer modified
/// after the lease was taken (what the holder is writing), plus whatever
/// was explicitly [`protect`](Lease::protect_blob)ed. The expiry bounds the
/// damage of a holder that was killed and never released it.
///
/// Lease rows are written without fsync (see `Store::light_tx`): they matter
/// only while their holder runs, and a release lost in a power failure just
/// lets the lease expire.
#[derive(Debug)]
pub struct Lease {
    store: Store,
    id: String,
}

impl Store {
    /// Takes a lease that expires after `ttl` unless renewed.
    pub fn lease(&self, ttl: Duration) -> Result<Lease> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}-{nanos}-{n}", std::process::id());
        let created = now();
        self.light_tx(|tx| {
            tx.execute(
                "INSERT INTO leases (id, created_at, expires_at) VALUES (?1, ?2, ?3)",
                params![id, created, expiry(created, ttl)],
            )?;
            Ok(())
        })?;
        Ok(Lease {
            store: self.clone(),
            id,
        })
    }
}

fn expiry(from: i64, ttl: Duration) -> i64 {
    from.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX))
}

impl Lease {
    /// The lease ID.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Keeps an existing blob (e.g. a base layer about to be reused) alive.
    ///
    /// Content written under the lease is covered by its modification time,
    /// but a write that found the blob already present leaves the old time;
    /// protect such blobs. Fails with [`StoreError::MissingBlob`] when GC
    /// removed the blob first, so the caller knows to write it again.
    pub fn protect_blob(&self, digest: &Digest) -> Result<()> {
        self.protect("blob", digest)?;
        if self.store.content().contains(digest) {
            Ok(())
        } else {
            Err(StoreError::MissingBlob(digest.clone()))
        }
    }

    /// Keeps an unpacked layer directory alive.
    pub fn protect_unpacked(&self, diff_id: &Digest) -> Result<()> {
        self.protect("unpacked", diff_id)
    }

    fn protect(&self, kind: &str, key: &Digest) -> Result<()> {
        self.store.light_tx(|tx| {
            tx.execute(
                "INSERT OR IGNORE INTO lease_resources (lease_id, kind, key) VALUES (?1, ?2, ?3)",
                params![self.id, kind, key.as_ref()],
            )?;
            Ok(())
        })
    }

    /// Extends the lease to `ttl` from now. Fails once GC has dropped the
    /// lease for having expired: what it protected may already be gone.
    pub fn renew(&self, ttl: Duration) -> Result<()> {
        self.store.light_tx(|tx| {
            let updated = tx.execute(
                "UPDATE leases SET expires_at = ?2 WHERE id = ?1",
                params![self.id, expiry(now(), ttl)],
            )?;
            if updated == 0 {
                return Err(StoreError::LeaseExpired(self.id.clone()));
            }
            Ok(())
        })
    }

    /// Releases the lease, reporting failure (dropping ignores it).
    pub fn release(self) -> Result<()> {
        self.delete()
    }

    fn delete(&self) -> Result<()> {
        self.store.light_tx(|tx| {
            tx.execute("DELETE FROM leases WHERE id = ?1", [&self.id])?;
            Ok(())
        })
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Best effort: an unreleased lease only delays GC until it expires.
        let _ = self.delete();
    }
}
