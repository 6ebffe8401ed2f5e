//! One module per command; each turns parsed arguments into library calls and prints results.

mod archive;
pub mod build;
mod build_flags;
pub mod builder;
pub mod cache_io;
mod frontend;
mod history;
mod human;
mod images;
mod import;
mod inspect;
mod lint;
mod outline;
mod prune;
pub mod registry;
mod store;
mod system;
mod table;
mod tag;
mod template;
mod tty;

use std::process::ExitCode;

use crate::cli::{Cli, Command, ImageCommand, SystemCommand};

/// Runs the command; the exit code is non-zero when the command found a problem it reports itself.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let global = &cli.global;
    match &cli.command {
        Command::Build(args) => build::run(global, args),
        Command::Outline(args) => outline::run(args),
        Command::Lint(args) => lint::run(args),
        Command::Import(args) => import::run(global, args),
        Command::Load(args) => archive::load(global, args),
        Command::Save(args) => archive::save(global, args),
        Command::Images(args) => images::run(global, args),
        Command::Tag(args) => tag::tag(global, args),
        Command::Rmi(args) => tag::rmi(global, args),
        Command::Inspect(args) => inspect::run(global, args),
        Command::History(args) => history::run(global, args),
        Command::Image(sub) => image(global, sub),
        Command::System(SystemCommand::Df(args)) => system::df(global, args),
        Command::System(SystemCommand::Check(args)) => system::check(global, args),
        Command::Builder(sub) => builder::run(global, sub),
        Command::Pull(args) => registry::pull(global, args),
        Command::Push(args) => registry::push(global, args),
        Command::Login(args) => registry::login(global, args),
        Command::Logout(args) => registry::logout(global, args),
    }
}

fn image(global: &crate::cli::GlobalArgs, sub: &ImageCommand) -> anyhow::Result<ExitCode> {
    match sub {
        ImageCommand::Ls(args) => images::run(global, args),
        ImageCommand::Prune(args) => prune::run(global, args),
        ImageCommand::Rm(args) => tag::rmi(global, args),
        ImageCommand::Inspect(args) => inspect::run(global, args),
        ImageCommand::History(args) => history::run(global, args),
        ImageCommand::Tag(args) => tag::tag(global, args),
        ImageCommand::Load(args) => archive::load(global, args),
        ImageCommand::Save(args) => archive::save(global, args),
        ImageCommand::Import(args) => import::run(global, args),
    }
}

/// The error and its causes on one line each, as `docker` prints them.
pub fn render_error(err: &anyhow::Error) -> String {
    err.chain()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}
