//! `kiln tag` and `kiln rmi`.

use std::process::ExitCode;

use anyhow::Context;
use kiln_store::Store;

use super::render_error;
use crate::cli::{GlobalArgs, RmiArgs, TagArgs};

pub fn tag(global: &GlobalArgs, args: &TagArgs) -> anyhow::Result<ExitCode> {
    let store = super::store::open(global)?;
    store
        .tag(&args.source, &args.target)
        .with_context(|| format!("tagging {} as {}", args.source, args.target))?;
    Ok(ExitCode::SUCCESS)
}

/// Removes each image in turn; a failure is reported and the rest still removed, as docker does.
pub fn rmi(global: &GlobalArgs, args: &RmiArgs) -> anyhow::Result<ExitCode> {
    let store = super::store::open(global)?;
    let mut failed = false;
    let mut deleted = false;
    for name in &args.images {
        match remove(&store, name, args.force) {
            Ok(gone) => deleted |= gone,
            Err(err) => {
                eprintln!("error: {}", render_error(&err));
                failed = true;
            }
        }
    }
    if deleted {
        store.gc().context("freeing the blobs of removed images")?;
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Prints `Untagged:` / `Deleted:` lines; true when an image was deleted.
fn remove(store: &Store, name: &str, force: bool) -> anyhow::Result<bool> {
    let report = store.remove_image(name, force)?;
    for r in &report.untagged {
        println!("Untagged: {}", r.familiar_string());
    }
    if let Some(id) = &report.deleted {
        println!("Deleted: {id}");
    }
    Ok(report.deleted.is_some())
}
