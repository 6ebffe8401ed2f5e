//! One module per command; each turns parsed arguments into library calls and prints results.

mod frontend;
mod lint;
mod outline;

use std::process::ExitCode;

use crate::cli::{Cli, Command};

/// Runs the command; the exit code is non-zero when the command found a problem it reports itself.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Outline(args) => outline::run(&args),
        Command::Lint(args) => lint::run(&args),
    }
}

/// The error and its causes on one line each, as `docker` prints them.
pub fn render_error(err: &anyhow::Error) -> String {
    err.chain()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}
