//! `meta.db`: connection setup and versioned migrations.
//!
//! Each entry of [`MIGRATIONS`] moves the schema one version up; the
//! version lives in `PRAGMA user_version`, so a store created by an older
//! kiln is upgraded in place and a newer one is refused.

use std::path::Path;
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, TransactionBehavior};

use crate::error::{Result, StoreError};

/// How long a writer waits for another process's write transaction.
/// GC holds the write lock while it sweeps, so this is generous.
const BUSY_TIMEOUT: Duration = Duration::from_secs(120);

/// Schema migrations, oldest first; index + 1 is the resulting version.
const MIGRATIONS: &[&str] = &[V1, V2, V3];

/// Version 1. GC is mark-and-sweep: roots are images (config, manifest,
/// layers), lease resources and, while a lease is active, content newer than
/// the lease; nothing is reference-counted.
const V1: &str = "
CREATE TABLE images (
    id              TEXT PRIMARY KEY,      -- config digest (the image ID)
    manifest_digest TEXT NOT NULL,
    media_type      TEXT NOT NULL,         -- manifest media type
    config_size     INTEGER NOT NULL,
    manifest_size   INTEGER NOT NULL,
    created         TEXT,                  -- config `created`, RFC 3339
    stored_at       INTEGER NOT NULL,      -- unix seconds when stored
    size            INTEGER NOT NULL,      -- config + layer blob bytes
    labels          TEXT NOT NULL,         -- JSON object of config labels
    intermediate    INTEGER NOT NULL,      -- 1 for build stage results
    build_id        TEXT,
    stage           TEXT
);
CREATE INDEX images_manifest ON images(manifest_digest);
CREATE TABLE tags (
    reference TEXT PRIMARY KEY,            -- full normalised reference
    image_id  TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
);
CREATE INDEX tags_image ON tags(image_id);
CREATE TABLE layers (
    digest     TEXT PRIMARY KEY,           -- blob digest (compressed)
    diff_id    TEXT NOT NULL,
    size       INTEGER NOT NULL,
    media_type TEXT NOT NULL
);
CREATE INDEX layers_diff_id ON layers(diff_id);
CREATE TABLE image_layers (
    image_id     TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    position     INTEGER NOT NULL,
    layer_digest TEXT NOT NULL REFERENCES layers(digest),
    PRIMARY KEY (image_id, position)
);
CREATE INDEX image_layers_layer ON image_layers(layer_digest);
CREATE TABLE unpacked (
    diff_id   TEXT PRIMARY KEY,
    dir       TEXT NOT NULL,               -- name under root/layers
    size      INTEGER NOT NULL,
    last_used INTEGER NOT NULL
);
CREATE TABLE leases (
    id         TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE TABLE lease_resources (
    lease_id TEXT NOT NULL REFERENCES leases(id) ON DELETE CASCADE,
    kind     TEXT NOT NULL,                -- 'blob' or 'unpacked'
    key      TEXT NOT NULL,                -- digest or diff_id
    PRIMARY KEY (lease_id, kind, key)
);
";

/// Version 2: the build step cache. One row per cache key (see kiln-build's
/// `cache` module for the key scheme); the layer it names is a GC root for as
/// long as the row exists, so a warm rebuild can reuse it without running
/// the step. `labels` (the stage's config labels) and `stage` let
/// `kiln builder prune` select records per stage.
const V2: &str = "
CREATE TABLE build_cache (
    key          TEXT PRIMARY KEY,         -- sha256 hex of the step definition
    diff_id      TEXT NOT NULL,
    layer_digest TEXT NOT NULL,            -- blob digest (compressed)
    media_type   TEXT NOT NULL,
    size         INTEGER NOT NULL,         -- blob bytes
    created      TEXT NOT NULL,            -- history `created` of the step, RFC 3339
    last_used    INTEGER NOT NULL,         -- unix seconds
    stage        TEXT NOT NULL,
    instruction  TEXT NOT NULL,
    labels       TEXT NOT NULL             -- JSON object
);
CREATE INDEX build_cache_layer ON build_cache(layer_digest);
";

/// Version 3: each layer's content size as `docker images` counts it (see
/// `kiln_layer::content_size`). Computed once per layer digest when an image
/// is recorded; rows of older stores stay NULL until the store fills them on
/// the next read. `images.size` keeps the stored bytes (config + blobs).
const V3: &str = "
ALTER TABLE layers ADD COLUMN content_size INTEGER;  -- NULL until computed
";

/// WAL pages after which a commit checkpoints them into the database. Every
/// process opening the store re-reads the WAL (the last one to close leaves it
/// in place, see [`open`]), so it is kept short: at most 1 MiB.
const AUTOCHECKPOINT_PAGES: i64 = 256;

/// Opens `meta.db` in WAL mode (readers never block writers) with a busy
/// timeout (writers from several processes queue instead of failing).
///
/// Closing does not checkpoint: a checkpoint syncs the WAL and the database
/// (two fsyncs) even when only a few lease or use-time rows were written, and
/// each kiln command is one short process. The WAL's commits are as durable
/// as ever; they are moved into the database by the automatic checkpoint once
/// [`AUTOCHECKPOINT_PAGES`] accumulate.
pub(crate) fn open(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
    conn.pragma_update(None, "wal_autocheckpoint", AUTOCHECKPOINT_PAGES)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode = enable_wal(&conn)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Corrupt(format!(
            "cannot enable WAL journal (got {mode})"
        )));
    }
    conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")?;
    migrate(&conn)?;
    Ok(conn)
}

/// Switches to WAL. SQLite does not call the busy handler for this, so
/// when another process is creating the same store at the same moment we
/// retry for a bounded time.
fn enable_wal(conn: &Connection) -> Result<String> {
    let mut delay = Duration::from_millis(5);
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0)) {
            Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => {
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(200));
            }
            other => return Ok(other?),
        }
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// Applies pending migrations in one write transaction, so concurrent
/// openers of a fresh store cannot both migrate.
fn migrate(conn: &Connection) -> Result<()> {
    let supported = MIGRATIONS.len() as i64;
    if user_version(conn)? == supported {
        return Ok(());
    }
    let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    let found = user_version(&tx)?;
    if found > supported {
        return Err(StoreError::SchemaTooNew { found, supported });
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(found).unwrap_or(0))
    {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
    }
    tx.commit()?;
    Ok(())
}

fn user_version(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// Highest schema version this build knows.
pub fn schema_version() -> i64 {
    MIGRATIONS.len() as i64
}
