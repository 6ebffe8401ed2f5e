//! Local image store: SQLite metadata over the content store, tags, GC, leases.
//!
//! Layout under the store root:
//! - `content/`: the [`ContentStore`] (an OCI image layout of blobs);
//! - `meta.db`: SQLite metadata (images, tags, layers, leases, build cache) in WAL mode,
//!   so several kiln processes can share one store; `meta.db-wal` holds the latest
//!   commits (closing does not checkpoint), so copy the three `meta.db*` files together;
//! - `layers/`: unpacked layer directories, one per diff ID, shared by all
//!   images;
//! - `tmp/`: scratch space on the same filesystem, for atomic renames.
//!
//! Crash safety: blobs are written first (atomically, by the content store),
//! then metadata in one SQLite transaction. A process killed at any point
//! leaves at worst unreferenced blobs or directories, which [`Store::gc`]
//! and [`Store::check`] with repair remove. Commits are fsynced except those
//! a power failure may lose harmlessly (leases, use times, build cache rows,
//! see `Store::light_tx`); the next fsynced commit makes those durable too.

mod cache;
mod check;
mod df;
mod error;
mod filter;
mod fsutil;
mod gc;
mod images;
mod lease;
mod record;
mod resolve;
mod schema;
mod unpacked;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use kiln_content::ContentStore;
use rusqlite::{Connection, Transaction, TransactionBehavior};

pub use cache::{CacheEntry, CacheFilter, CachePruneReport, CacheRecord};
pub use check::CheckReport;
pub use df::{DfReport, UsageLine};
pub use error::{Result, StoreError};
pub use filter::{ImageFilter, LabelFilter, PruneFilter, parse_until};
pub use gc::{GcReport, PruneReport};
pub use images::PutImage;
pub use lease::Lease;
pub use record::{ImageRecord, LayerRecord, RemoveReport, StageRef};
pub use schema::schema_version;
pub use unpacked::UnpackedLayer;

use error::io_err;

/// A local image store. Cheap to clone; clones share one connection.
#[derive(Clone, Debug)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    content: ContentStore,
    conn: Mutex<Connection>,
}

impl Store {
    /// Opens (creating and migrating if needed) the store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        for dir in [root.join("layers"), root.join("tmp")] {
            std::fs::create_dir_all(&dir).map_err(|e| io_err(e, "creating", &dir))?;
        }
        let content = ContentStore::open(root.join("content"))?;
        let conn = schema::open(&root.join("meta.db"))?;
        let inner = Inner {
            root,
            content,
            conn: Mutex::new(conn),
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// The store root directory.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// The blob store holding manifests, configs and layers.
    pub fn content(&self) -> &ContentStore {
        &self.inner.content
    }

    /// Directory of unpacked layers.
    pub fn layers_dir(&self) -> PathBuf {
        self.inner.root.join("layers")
    }

    /// A fresh scratch directory inside the store, removed on drop. Being on
    /// the store's filesystem, its contents can be renamed into place.
    pub fn tmp_dir(&self) -> Result<tempfile::TempDir> {
        let dir = self.inner.root.join("tmp");
        tempfile::Builder::new()
            .prefix("kiln-")
            .tempdir_in(&dir)
            .map_err(|e| io_err(e, "creating temp dir in", &dir))
    }

    /// The connection, recovered even if another thread panicked with it.
    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.inner.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` in a write transaction taken up front (`BEGIN IMMEDIATE`),
    /// so checks made inside it cannot be invalidated by another writer.
    /// The commit is durable (fsynced) before this returns.
    fn write_tx<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.conn();
        run_tx(&mut conn, f)
    }

    /// [`Store::write_tx`] for rows whose loss in a power failure is harmless:
    /// leases (only live processes need them), use times, and re-stores that
    /// change nothing but such times. The commit is not fsynced (WAL with
    /// `synchronous=NORMAL` for it): it is atomic and survives a crash of the
    /// process, and the next durable commit or checkpoint makes it durable.
    /// This keeps fsyncs off a build whose steps are all cached.
    fn light_tx<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.conn();
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let out = run_tx(&mut conn, f);
        let restored = conn.pragma_update(None, "synchronous", "FULL");
        let out = out?;
        restored?;
        Ok(out)
    }
}

fn run_tx<T>(conn: &mut Connection, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let out = f(&tx)?;
    tx.commit()?;
    Ok(out)
}

/// The default store root: `$KILN_ROOT`, else `/var/lib/kiln` for root,
/// else `$XDG_DATA_HOME/kiln` or `~/.local/share/kiln`.
pub fn default_root() -> PathBuf {
    let is_root = rustix::process::geteuid().is_root();
    root_from_env(|k| std::env::var_os(k), is_root)
}

/// [`default_root`] with the environment and privilege passed in, for tests.
pub fn root_from_env(var: impl Fn(&str) -> Option<OsString>, is_root: bool) -> PathBuf {
    let set = |k: &str| var(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(root) = set("KILN_ROOT") {
        return root;
    }
    if is_root {
        return PathBuf::from("/var/lib/kiln");
    }
    if let Some(data) = set("XDG_DATA_HOME") {
        return data.join("kiln");
    }
    let home = set("HOME").unwrap_or_else(|| PathBuf::from("/"));
    home.join(".local/share/kiln")
}
