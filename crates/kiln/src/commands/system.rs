//! `kiln system df` and `kiln system check`.

use std::collections::{HashMap, HashSet};
use std::process::ExitCode;

use anyhow::Context;
use kiln_image::oci_spec::image::Digest;
use kiln_store::{CheckReport, ImageFilter, ImageRecord, Store, UsageLine};

use super::{human, table};
use crate::cli::{CheckArgs, DfArgs, GlobalArgs};

pub fn df(global: &GlobalArgs, args: &DfArgs) -> anyhow::Result<ExitCode> {
    let store = super::store::open(global)?;
    let usage = store.disk_usage().context("measuring disk usage")?;
    let images = store
        .list_images(&ImageFilter {
            all: true,
            ..ImageFilter::default()
        })
        .context("listing images")?;
    let tagged: Vec<&ImageRecord> = images.iter().filter(|i| !i.is_dangling()).collect();
    let unpacked_active = active_unpacked(&store, &tagged)?;
    let lines = [
        "TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE".to_owned(),
        usage_line("Images", &usage.images, tagged.len(), true),
        usage_line("Build Cache", &usage.build_cache, 0, false),
        usage_line("Unpacked layers", &usage.unpacked, unpacked_active, true),
    ];
    print!("{}", table::render(&lines));
    if args.verbose {
        print!(
            "\nImages space usage:\n\n{}",
            verbose_images(&store, &images)?
        );
        println!(
            "\nBuild cache usage: {}",
            human::size_long(usage.build_cache.size)
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn usage_line(kind: &str, line: &UsageLine, active: usize, percent: bool) -> String {
    let mut reclaimable = human::size_long(line.reclaimable);
    if percent && line.size > 0 {
        reclaimable.push_str(&format!(" ({}%)", line.reclaimable * 100 / line.size));
    }
    format!(
        "{kind}\t{}\t{active}\t{}\t{reclaimable}",
        line.count,
        human::size_long(line.size)
    )
}

/// Unpacked layer directories that a tagged image uses.
fn active_unpacked(store: &Store, tagged: &[&ImageRecord]) -> anyhow::Result<usize> {
    let mut diff_ids = HashSet::new();
    for img in tagged {
        let layers = store
            .image_layers(&img.id)
            .with_context(|| format!("listing the layers of {}", img.id))?;
        diff_ids.extend(layers.into_iter().map(|l| l.diff_id));
    }
    let dir = store.layers_dir();
    Ok(diff_ids
        .iter()
        .filter(|d| {
            dir.join(format!("{}-{}", d.algorithm(), d.digest()))
                .is_dir()
        })
        .count())
}

/// One line per image tag, with the bytes it shares with other images.
fn verbose_images(store: &Store, images: &[ImageRecord]) -> anyhow::Result<String> {
    let shared = shared_sizes(store, images)?;
    let mut lines = vec![
        "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\tSHARED SIZE\tUNIQUE SIZE\tCONTAINERS".to_owned(),
    ];
    for img in images {
        let shared = shared.get(&img.id).copied().unwrap_or(0);
        for (repo, tag) in super::images::names(img) {
            lines.push(format!(
                "{repo}\t{tag}\t{}\t{}\t{}\t{}\t{}\t0",
                img.short_id(),
                human::since(img.created.as_deref()),
                human::size(img.size),
                human::size(shared),
                human::size(img.size.saturating_sub(shared)),
            ));
        }
    }
    Ok(table::render(&lines))
}

/// Per image, the content bytes (as `docker images` counts them, like the
/// image's SIZE) of its layers that other images use too.
fn shared_sizes(store: &Store, images: &[ImageRecord]) -> anyhow::Result<HashMap<Digest, u64>> {
    let mut layers = HashMap::new();
    for img in images {
        let list = store
            .image_layers(&img.id)
            .with_context(|| format!("listing the layers of {}", img.id))?;
        let sizes = store
            .layer_content_sizes(&img.id)
            .with_context(|| format!("listing the layers of {}", img.id))?;
        let list: Vec<(Digest, u64)> = list.into_iter().map(|l| l.digest).zip(sizes).collect();
        layers.insert(img.id.clone(), list);
    }
    let mut users: HashMap<&Digest, usize> = HashMap::new();
    for (digest, _) in layers.values().flatten() {
        *users.entry(digest).or_default() += 1;
    }
    Ok(layers
        .iter()
        .map(|(id, list)| {
            let shared = list
                .iter()
                .filter(|(d, _)| users[d] > 1)
                .map(|(_, size)| size);
            (id.clone(), shared.sum())
        })
        .collect())
}

/// Exit 1 when something is broken (after `--repair`, when something could not be fixed).
pub fn check(global: &GlobalArgs, args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let store = super::store::open(global)?;
    let report = store
        .check(args.repair)
        .context("checking the image store")?;
    print!("{}", describe(&report));
    let broken = if report.repaired {
        !report.db_errors.is_empty()
    } else {
        !report.is_ok()
    };
    if broken {
        eprintln!(
            "error: the image store at {} has problems",
            store.root().display()
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(r: &CheckReport) -> String {
    let fixed = if r.repaired { " (repaired)" } else { "" };
    let mut out = format!("checked {} blobs\n", r.blobs_checked);
    for d in &r.corrupt_blobs {
        out.push_str(&format!("corrupt blob {d}{fixed}\n"));
    }
    for (image, blob) in &r.missing_blobs {
        out.push_str(&format!("image {image} needs missing blob {blob}{fixed}\n"));
    }
    for e in &r.db_errors {
        out.push_str(&format!("database: {e}\n"));
    }
    for id in &r.removed_images {
        out.push_str(&format!("removed image {id}\n"));
    }
    let orphans =
        r.orphan_blobs.len() + r.ingest_files + r.orphan_unpacked.len() + r.stale_unpacked.len();
    if orphans > 0 {
        let hint = if r.repaired {
            "removed"
        } else {
            "harmless; `kiln system check --repair` removes them"
        };
        out.push_str(&format!(
            "{} orphan blobs, {} unfinished ingest files, {} orphan unpacked layers, {} stale unpacked records ({hint})\n",
            r.orphan_blobs.len(),
            r.ingest_files,
            r.orphan_unpacked.len(),
            r.stale_unpacked.len()
        ));
    }
    let status = if r.is_ok() || (r.repaired && r.db_errors.is_empty()) {
        "ok"
    } else {
        "problems found"
    };
    out.push_str(&format!("status: {status}\n"));
    out
}
