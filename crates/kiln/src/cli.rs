//! Command-line syntax: docker-compatible names and flags where a docker command has a twin.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "kiln",
    version,
    about = "A fast, daemonless builder for multi-stage Dockerfiles",
    after_help = "Examples:\n  kiln outline --target build .\n  kiln lint -f app/Dockerfile\n\nRun `kiln COMMAND --help` for a command's flags and examples."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Store directory (default: $KILN_ROOT, else /var/lib/kiln as root, else ~/.local/share/kiln)
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Verbose logs on stderr (or set KILN_LOG, e.g. KILN_LOG=kiln=debug)
    #[arg(long, global = true)]
    pub debug: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the stages, what the target needs and in which order, and the ARGs that matter
    #[command(after_help = "Examples:\n  kiln outline .\n  kiln outline --target build --format json .\n  kiln outline -f docker/Dockerfile --build-arg VERSION=2 .")]
    Outline(OutlineArgs),
    /// Run BuildKit's build checks (and kiln's own) on a Dockerfile
    #[command(after_help = "Examples:\n  kiln lint\n  kiln lint -f app/Dockerfile --format json\n\nA `# check=skip=Rule1,Rule2;error=true` line at the top of the Dockerfile skips rules or makes findings fatal.")]
    Lint(LintArgs),
}

/// Where the Dockerfile comes from, shared by the commands that read one.
#[derive(Debug, Args)]
pub struct DockerfileArgs {
    /// Name of the Dockerfile (default: CONTEXT/Dockerfile; `-` reads it from stdin)
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Set a build-time variable (KEY=VALUE, or KEY to take it from the environment)
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,
    /// Build context directory
    #[arg(default_value = ".", value_name = "CONTEXT")]
    pub context: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct OutlineArgs {
    #[command(flatten)]
    pub dockerfile: DockerfileArgs,
    /// Stage to build (default: the last one)
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct LintArgs {
    #[command(flatten)]
    pub dockerfile: DockerfileArgs,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}
