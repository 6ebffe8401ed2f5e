//! `kiln builder du` and `kiln builder prune`: the build step cache, as `docker builder` shows
//! and prunes it.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use kiln_store::{CacheEntry, CacheFilter};

use super::{human, table};
use crate::cli::GlobalArgs;

/// `kiln builder` subcommands.
#[derive(Debug, Subcommand)]
pub enum BuilderCommand {
    /// Show the build cache: each cached step, its size and last use, and totals
    Du,
    /// Remove build cache records (and the build-stage images made from them), then free
    /// the space nothing else uses
    #[command(after_help = PRUNE_EXAMPLES)]
    Prune(PruneArgs),
}

const PRUNE_EXAMPLES: &str = "Examples:\n  kiln builder prune -f\n  kiln builder prune -af --filter label=stage=builder\n  kiln builder prune -f --filter until=24h --keep-storage 5GB";

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Also remove records whose layers an image uses
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Do not ask for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// `label=KEY[=VALUE]`, `label!=KEY[=VALUE]` (the stage's labels) or `until=DURATION`
    /// (last used before); repeatable, all must match
    #[arg(long = "filter", value_name = "FILTER")]
    pub filters: Vec<String>,
    /// Stop once the build cache is at most this big (`5GB`, `512MB`; 1KB = 1024 bytes)
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub keep_storage: Option<u64>,
}

pub fn run(global: &GlobalArgs, cmd: &BuilderCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        BuilderCommand::Du => du(global),
        BuilderCommand::Prune(args) => prune(global, args),
    }
}

fn du(global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let store = super::store::open(global)?;
    let entries = store.cache_entries().context("reading the build cache")?;
    print!("{}", du_table(&entries, chrono::Utc::now().timestamp()));
    Ok(ExitCode::SUCCESS)
}

/// One line per record, most recently used first, then the totals docker prints.
fn du_table(entries: &[CacheEntry], now: i64) -> String {
    let mut lines = vec!["ID\tSTAGE\tINSTRUCTION\tSIZE\tLAST USED\tSHARED".to_owned()];
    for e in entries.iter().rev() {
        let r = &e.record;
        lines.push(format!(
            "{}\t{}\t{}\t{}\t{} ago\t{}",
            r.key.chars().take(12).collect::<String>(),
            r.stage,
            human::ellipsis(&r.instruction, 40),
            human::size(r.size),
            human::duration(now - r.last_used),
            e.shared,
        ));
    }
    let (shared, private) = totals(entries);
    let mut out = table::render(&lines);
    out.push_str(&format!(
        "Shared:\t\t{}\nPrivate:\t{}\nReclaimable:\t{}\nTotal:\t\t{}\n",
        human::size_long(shared),
        human::size_long(private),
        human::size_long(private),
        human::size_long(shared + private)
    ));
    out
}

/// Bytes of distinct layers an image shares, and of those only the cache holds.
fn totals(entries: &[CacheEntry]) -> (u64, u64) {
    let mut seen = std::collections::HashSet::new();
    let (mut shared, mut private) = (0, 0);
    for e in entries
        .iter()
        .filter(|e| seen.insert(&e.record.layer_digest))
    {
        if e.shared {
            shared += e.record.size;
        } else {
            private += e.record.size;
        }
    }
    (shared, private)
}

fn prune(global: &GlobalArgs, args: &PruneArgs) -> anyhow::Result<ExitCode> {
    let filter = CacheFilter::parse(args.all, &args.filters, args.keep_storage)?;
    if !args.force && !confirm()? {
        return Ok(ExitCode::SUCCESS);
    }
    let store = super::store::open(global)?;
    let report = store
        .prune_cache(&filter)
        .context("pruning the build cache")?;
    if !report.removed.is_empty() {
        println!("Deleted build cache objects:");
        for r in &report.removed {
            println!("{}\t{}\t{}", r.key, r.stage, r.instruction);
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        human::size_long(report.bytes_freed)
    );
    Ok(ExitCode::SUCCESS)
}

/// Asks on the terminal; without one there is nobody to ask, so refuse.
fn confirm() -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "refusing to prune without confirmation: stdin is not a terminal (pass -f/--force to prune anyway)"
        );
    }
    print!(
        "WARNING! This will remove the selected build cache.\nAre you sure you want to continue? [y/N] "
    );
    std::io::stdout().flush().context("writing the prompt")?;
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("reading the answer")?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes"))
}

/// `5GB`, `512m`, `1.5GiB`, `1024`: binary units, as docker's `--keep-storage` reads them.
fn parse_size(raw: &str) -> Result<u64, String> {
    let s = raw.trim().to_ascii_lowercase();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid size {raw:?}: expected e.g. 5GB"))?;
    let shift = match unit.trim_end_matches("ib").trim_end_matches('b') {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => return Err(format!("invalid size {raw:?}: unknown unit {unit:?}")),
    };
    Ok((value * (1u64 << shift) as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_binary_units() {
        assert_eq!(parse_size("5GB"), Ok(5 << 30));
        assert_eq!(parse_size("512m"), Ok(512 << 20));
        assert_eq!(parse_size("1.5KiB"), Ok(1536));
        assert_eq!(parse_size("100"), Ok(100));
        assert!(parse_size("5XB").is_err());
        assert!(parse_size("GB").is_err());
    }
}
