//! `kiln`: a fast, daemonless builder for multi-stage Dockerfiles.

mod cli;
mod commands;

use clap::Parser;

fn main() -> std::process::ExitCode {
    // Must run before any thread starts: a re-exec'd container helper never returns from here.
    kiln_executor::helper_main();
    let cli = cli::Cli::parse();
    init_tracing(cli.global.debug);
    match commands::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", commands::render_error(&err));
            std::process::ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr; `KILN_LOG` (e.g. `kiln=debug`) or `--debug` turns them up.
fn init_tracing(debug: bool) {
    let default = if debug { "debug" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("KILN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .init();
}
