//! `kiln outline`: the stage graph of a Dockerfile for a target.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::anyhow;
use kiln_plan::Outline;

use super::frontend::{Source, build_args};
use crate::cli::{Format, OutlineArgs};

pub fn run(args: &OutlineArgs) -> anyhow::Result<ExitCode> {
    let source = Source::read(&args.dockerfile)?;
    let build_args = build_args(&args.dockerfile.build_args)?;
    let dockerfile = source.stages(&build_args)?;
    let target = dockerfile
        .target(args.target.as_deref())
        .map_err(|e| anyhow!(e.message))?;
    let outline = Outline::new(&dockerfile, target, &build_args)?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&outline)?),
        Format::Text => print!("{}", text(&outline)),
    }
    Ok(ExitCode::SUCCESS)
}

fn stage_label(outline: &Outline, index: usize) -> String {
    match outline.stages.get(index).and_then(|s| s.name.clone()) {
        Some(name) => format!("{name} (#{index})"),
        None => format!("stage-{index} (#{index})"),
    }
}

fn text(outline: &Outline) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "TARGET: {}", stage_label(outline, outline.target));
    let _ = writeln!(out, "\nSTAGES");
    for stage in &outline.stages {
        let mark = if outline.needed.contains(&stage.index) {
            "*"
        } else {
            " "
        };
        let deps: Vec<String> = stage
            .depends_on
            .iter()
            .map(|d| stage_label(outline, *d))
            .collect();
        let _ = write!(
            out,
            "{mark} {:<24} FROM {}",
            stage_label(outline, stage.index),
            stage.base
        );
        if !deps.is_empty() {
            let _ = write!(out, "  <- {}", deps.join(", "));
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(
        out,
        "\nBUILD ORDER (* = needed by the target; a line runs in parallel)"
    );
    for (n, wave) in outline.waves.iter().enumerate() {
        let names: Vec<String> = wave.iter().map(|i| stage_label(outline, *i)).collect();
        let _ = writeln!(out, "  {}. {}", n + 1, names.join(", "));
    }
    if !outline.args.is_empty() {
        let _ = writeln!(out, "\nARGS");
        for arg in &outline.args {
            let scope = arg
                .stage
                .map_or("global".to_owned(), |i| stage_label(outline, i));
            let value = arg.value.as_deref().unwrap_or("<unset>");
            let _ = writeln!(out, "  {:<20} {:<24} {scope}", arg.name, value);
        }
    }
    out
}
