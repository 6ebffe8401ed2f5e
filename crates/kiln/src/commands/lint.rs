//! `kiln lint`: BuildKit's build checks that need no image, plus kiln's own.

use std::process::ExitCode;

use anyhow::anyhow;
use kiln_dockerfile::lint::{LintError, LintOptions, lint, render_json, render_text};

use super::frontend::{Source, build_args};
use crate::cli::{Format, LintArgs};

/// Exit code 1 when `# check=error=true` is set and a check fired.
pub fn run(args: &LintArgs) -> anyhow::Result<ExitCode> {
    let source = Source::read(&args.dockerfile)?;
    let opts = LintOptions {
        build_args: build_args(&args.dockerfile.build_args)?,
        context: Some(args.dockerfile.context.clone()),
        dockerfile: source.path.clone(),
        ..LintOptions::default()
    };
    let report = lint(&source.text, &opts).map_err(|err| match err {
        LintError::Dockerfile(e) => source.error(&e),
        other => anyhow!(other),
    })?;
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&render_json(&report, &source.name))?
        ),
        Format::Text => print!("{}", render_text(&report, &source.name, &source.text)),
    }
    if report.error {
        eprintln!(
            "error: lint checks failed ({} finding(s))",
            report.findings.len()
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
