//! `kiln image prune`.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context, bail};
use kiln_store::{ImageFilter, PruneFilter, Store};

use super::human;
use crate::cli::{GlobalArgs, PruneArgs};

pub fn run(global: &GlobalArgs, args: &PruneArgs) -> anyhow::Result<ExitCode> {
    let filter = PruneFilter::parse(&args.filters)?;
    if !args.force && !confirm(args.all)? {
        return Ok(ExitCode::SUCCESS);
    }
    let store = super::store::open(global)?;
    let (lines, reclaimed) = if args.all {
        prune_all(&store, &filter)?
    } else {
        prune_dangling(&store, &filter)?
    };
    if !lines.is_empty() {
        println!("Deleted Images:");
        lines.iter().for_each(|l| println!("{l}"));
        println!();
    }
    println!("Total reclaimed space: {}", human::size_long(reclaimed));
    Ok(ExitCode::SUCCESS)
}

/// Asks on the terminal; without one there is nobody to ask, so refuse.
fn confirm(all: bool) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "refusing to prune without confirmation: stdin is not a terminal (pass -f/--force to prune anyway)"
        );
    }
    let what = if all {
        "all images (kiln runs no containers, so every image is unused)"
    } else {
        "all dangling images"
    };
    print!("WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ");
    std::io::stdout().flush().context("writing the prompt")?;
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("reading the answer")?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes"))
}

fn prune_dangling(store: &Store, filter: &PruneFilter) -> anyhow::Result<(Vec<String>, u64)> {
    let report = store.prune(filter).context("pruning dangling images")?;
    let lines = report
        .removed
        .iter()
        .map(|id| format!("deleted: {id}"))
        .collect();
    Ok((lines, report.bytes_reclaimed))
}

/// `-a`: every image the filters select, tagged or not.
fn prune_all(store: &Store, filter: &PruneFilter) -> anyhow::Result<(Vec<String>, u64)> {
    let select = ImageFilter {
        all: true,
        labels: filter.labels.clone(),
        until: filter.until,
        ..ImageFilter::default()
    };
    let mut lines = Vec::new();
    for img in store.list_images(&select).context("listing images")? {
        let report = store
            .remove_image(img.id.as_ref(), true)
            .with_context(|| format!("removing image {}", img.id))?;
        lines.extend(
            report
                .untagged
                .iter()
                .map(|r| format!("untagged: {}", r.familiar_string())),
        );
        lines.extend(report.deleted.iter().map(|id| format!("deleted: {id}")));
    }
    let gc = store.gc().context("freeing unused blobs")?;
    Ok((lines, gc.bytes_freed))
}
