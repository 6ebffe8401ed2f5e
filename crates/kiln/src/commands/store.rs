//! Opening the image store named by `--root`, and holding a GC lease while writing to it.

use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context;
use kiln_store::{Lease, Store};

use crate::cli::GlobalArgs;

/// How long a lease outlives a killed kiln.
const LEASE_TTL: Duration = Duration::from_secs(600);
/// How often a running command renews its lease.
const LEASE_RENEW: Duration = Duration::from_secs(60);

/// Opens (creating if needed) the store at `--root`, else the default root.
pub fn open(global: &GlobalArgs) -> anyhow::Result<Store> {
    let root = global.root.clone().unwrap_or_else(kiln_store::default_root);
    Store::open(&root).with_context(|| format!("opening the image store at {}", root.display()))
}

/// Runs `work` under a GC lease renewed in the background, so a concurrent prune or GC keeps
/// the blobs it writes before they belong to an image.
pub fn leased<T>(
    store: &Store,
    work: impl FnOnce(&Lease) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let lease = store
        .lease(LEASE_TTL)
        .context("taking a GC lease on the store")?;
    let (stop, stopped) = mpsc::channel::<()>();
    let renewing = &lease;
    let out = std::thread::scope(|scope| {
        let renewer = scope.spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(LEASE_RENEW) {
                if let Err(err) = renewing.renew(LEASE_TTL) {
                    tracing::warn!("renewing the store lease: {err}");
                }
            }
        });
        let out = work(renewing);
        drop(stop);
        let _ = renewer.join();
        out
    });
    let released = lease.release();
    let out = out?;
    released.context("releasing the GC lease")?;
    Ok(out)
}
