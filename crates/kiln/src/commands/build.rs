//! `kiln build`: a Dockerfile and a context into an image, as `docker build` does.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, IsTerminal as _, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context as _, anyhow, bail};
use clap::{Args, ValueEnum};
use kiln_build::{
    BuildRequest, BuildSummary, Network, PlainProgress, Progress, Runtime, StepInfo, StepOutcome,
};
use kiln_export::ExportImage;
use serde_json::json;

use super::build_flags::{Output, RootfsDest, parse_output};
use super::frontend::build_args;
use super::tty::TtyProgress;
use super::{cache_io, registry, store};
use crate::cli::GlobalArgs;

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Name and optionally a tag (`name:tag`) for the final image; repeatable
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    pub tags: Vec<String>,
    /// Name of the Dockerfile (default: CONTEXT/Dockerfile; `-` reads it from stdin)
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Stage to build (default: the last one); only the stages it needs run
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,
    /// Set a build-time variable (KEY=VALUE, or KEY to take it from the environment)
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,
    /// Set a label on the final image
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Run every step instead of reusing cached ones (the results are still cached)
    #[arg(long)]
    pub no_cache: bool,
    /// Run every step of these stages (comma-separated names); others may use the cache
    #[arg(long, value_name = "STAGE,...", value_delimiter = ',')]
    pub no_cache_filter: Vec<String>,
    /// Network for RUN steps: `default` shares the host's network, `none` has only loopback
    #[arg(long, value_enum, default_value_t = NetworkArg::Default)]
    pub network: NetworkArg,
    /// Stages built at the same time at most (default: the number of cores)
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Progress output: `tty` a live display, `plain` BuildKit-style step lines, `auto` the
    /// first on a terminal and the second elsewhere, `quiet` only the image ID
    #[arg(long, value_enum, default_value_t = ProgressArg::Auto)]
    pub progress: ProgressArg,
    /// Print only the image ID (same as --progress quiet)
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Where the result goes: `type=image` (the store, default), `type=docker,dest=FILE`
    /// (a `docker load` archive), `type=oci,dest=FILE` (an OCI layout tarball), or the target
    /// stage's files: `type=local,dest=DIR` (or `-o DIR`), `type=tar,dest=FILE` (`-` or `-o -`:
    /// stdout)
    #[arg(short = 'o', long = "output", value_name = "type=TYPE[,dest=PATH]")]
    pub output: Option<String>,
    /// Write the image ID to this file
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<PathBuf>,
    /// Write build metadata (digests, names, the steps that ran) as JSON to this file
    #[arg(long, value_name = "FILE")]
    pub metadata_file: Option<PathBuf>,
    /// Container runtime for RUN steps: the in-process `builtin` (youki's libcontainer) or `runc`
    #[arg(long, value_enum, default_value_t = RuntimeArg::Builtin)]
    pub runtime: RuntimeArg,
    /// Always pull FROM and `--from` images, even those already in the store
    #[arg(long)]
    pub pull: bool,
    /// Push the result to its registry under every `-t` tag after the build
    #[arg(long, requires = "tags")]
    pub push: bool,
    #[command(flatten)]
    pub cache: Box<cache_io::CacheArgs>,
    /// Build context directory, or `-` for a tar archive on stdin
    #[arg(value_name = "CONTEXT")]
    pub context: PathBuf,
    /// `--secret`, `--platform`, `--compression`.
    #[command(flatten)]
    pub flags: super::build_flags::FlagArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NetworkArg {
    Default,
    Host,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressArg {
    Auto,
    Tty,
    Plain,
    Quiet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RuntimeArg {
    Builtin,
    Runc,
}

/// The build-args, with `SOURCE_DATE_EPOCH` from kiln's environment unless one is given, as
/// buildx passes it on.
fn with_env_epoch(mut args: BTreeMap<String, String>) -> BTreeMap<String, String> {
    if let Ok(epoch) = std::env::var(kiln_build::SOURCE_DATE_EPOCH) {
        args.entry(kiln_build::SOURCE_DATE_EPOCH.to_string())
            .or_insert(epoch);
    }
    args
}

pub fn run(global: &GlobalArgs, args: &BuildArgs) -> anyhow::Result<ExitCode> {
    let output = parse_output(args.output.as_deref())?;
    let cache_to = cache_io::parse_cache_to(&args.cache.cache_to)?;
    let context = BuildContext::open(&args.context, args.file.as_deref())?;
    let (dockerfile, dockerfile_name, dockerfile_path) =
        context.dockerfile(args.file.as_deref())?;
    let req = BuildRequest {
        dockerfile,
        dockerfile_name,
        dockerfile_path,
        context: context.root().to_path_buf(),
        build_args: with_env_epoch(build_args(&args.build_args)?),
        target: args.target.clone(),
        tags: args.tags.clone(),
        labels: labels(&args.labels)?,
        no_cache: args.no_cache,
        no_cache_filter: args.no_cache_filter.clone(),
        jobs: args.jobs.unwrap_or_else(cores),
        network: match args.network {
            NetworkArg::None => Network::None,
            NetworkArg::Default | NetworkArg::Host => Network::Host,
        },
        runtime: match args.runtime {
            RuntimeArg::Builtin => Runtime::default(),
            RuntimeArg::Runc => Runtime::Runc { binary: None },
        },
        pull: args.pull,
        fetcher: Some(registry::fetcher(global)?),
        cache_from: cache_io::sources(global, &args.cache.cache_from)?,
        secrets: super::build_flags::secrets(&args.flags.secrets)?,
        platform: args.flags.platform.clone(),
        compression: args.flags.compression.layer(),
    };
    let store = store::open(global)?;
    let quiet = args.quiet || args.progress == ProgressArg::Quiet;
    let mut progress = Recorder::new(display(args.progress, quiet)?);
    let result = kiln_build::build(&store, &req, &mut progress).map_err(|e| anyhow!("{e}"))?;
    let image = &result.image;
    export(&store, &output, image, &args.tags)?;
    cache_io::export(global, &store, &result.cache, &cache_to)?;
    if args.push {
        registry::push_tags(global, &store, &args.tags)?;
    }
    if let Some(path) = &args.iidfile {
        std::fs::write(path, image.id.to_string())
            .with_context(|| format!("writing --iidfile {}", path.display()))?;
    }
    if let Some(path) = &args.metadata_file {
        write_metadata(path, image, &args.tags, &progress.steps)?;
    }
    if quiet && output != Output::Rootfs(RootfsDest::Stdout) {
        println!("{}", image.id);
    }
    Ok(ExitCode::SUCCESS)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// `--label K=V` pairs.
fn labels(raw: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    raw.iter()
        .map(|item| match item.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            _ => Err(anyhow!("invalid label {item:?}: expected KEY=VALUE")),
        })
        .collect()
}

/// Writes the archive `--output` asks for (the image also stays in the store).
fn export(
    store: &kiln_store::Store,
    output: &Output,
    image: &kiln_store::ImageRecord,
    tags: &[String],
) -> anyhow::Result<()> {
    let (dest, oci) = match output {
        Output::Image => return Ok(()),
        Output::Rootfs(dest) => return super::build_flags::export_rootfs(store, image, dest),
        Output::Docker(dest) => (dest, false),
        Output::Oci(dest) => (dest, true),
    };
    let images = [ExportImage {
        manifest_digest: image.manifest_digest.clone(),
        tags: tags.to_vec(),
    }];
    let file = File::create(dest).with_context(|| format!("creating {}", dest.display()))?;
    let mut out = BufWriter::new(file);
    if oci {
        kiln_export::export_oci_archive(store.content(), &images, &mut out)?;
    } else {
        kiln_export::export_docker_archive(store.content(), &images, &mut out)?;
    }
    out.flush()
        .with_context(|| format!("writing {}", dest.display()))
}

/// `--metadata-file`: BuildKit's keys plus the steps that ran, so scripts can check them.
fn write_metadata(
    path: &Path,
    image: &kiln_store::ImageRecord,
    tags: &[String],
    steps: &[RecordedStep],
) -> anyhow::Result<()> {
    let steps: Vec<_> = steps
        .iter()
        .map(|s| {
            json!({"stage": s.stage, "step": s.text, "seconds": s.seconds, "ok": s.ok, "cached": s.cached})
        })
        .collect();
    let doc = json!({
        "containerimage.config.digest": image.id.to_string(),
        "containerimage.digest": image.manifest_digest.to_string(),
        "image.name": tags.join(","),
        "kiln.steps": steps,
    });
    std::fs::write(path, serde_json::to_vec_pretty(&doc)?)
        .with_context(|| format!("writing --metadata-file {}", path.display()))
}

/// The build context: a directory, or a tar from stdin unpacked into a private temp dir.
enum BuildContext {
    Dir(PathBuf),
    Tar(kiln_context::Context),
}

impl BuildContext {
    fn open(context: &Path, file: Option<&Path>) -> anyhow::Result<Self> {
        if context != Path::new("-") {
            return Ok(Self::Dir(context.to_path_buf()));
        }
        if file == Some(Path::new("-")) {
            bail!("the Dockerfile and the context cannot both come from stdin");
        }
        let name = file.map_or("Dockerfile".to_owned(), |f| f.display().to_string());
        let ctx = kiln_context::Context::from_tar(std::io::stdin().lock(), &name)
            .context("reading the build context tar from stdin")?;
        Ok(Self::Tar(ctx))
    }

    fn root(&self) -> &Path {
        match self {
            Self::Dir(dir) => dir,
            Self::Tar(ctx) => ctx.root(),
        }
    }

    /// The Dockerfile's text, its name in messages and its path (for `<name>.dockerignore`).
    fn dockerfile(&self, file: Option<&Path>) -> anyhow::Result<(String, String, Option<PathBuf>)> {
        let path = match (self, file) {
            (_, Some(f)) if f == Path::new("-") => {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                    .context("reading the Dockerfile from stdin")?;
                return Ok((text, "Dockerfile".into(), None));
            }
            (Self::Tar(ctx), Some(f)) => ctx.root().join(f),
            (Self::Dir(_), Some(f)) => f.to_path_buf(),
            (_, None) => self.root().join("Dockerfile"),
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("failed to read Dockerfile {}", path.display()))?;
        let name = match file {
            Some(f) => f.display().to_string(),
            None => "Dockerfile".into(),
        };
        Ok((text, name, Some(path)))
    }
}

/// One step as `--metadata-file` reports it.
struct RecordedStep {
    id: usize,
    stage: String,
    text: String,
    started: Instant,
    seconds: f64,
    ok: bool,
    /// Served by the step cache: nothing ran.
    cached: bool,
}

/// The display `--progress` asks for: `None` when quiet. `tty` needs a terminal, as in buildx.
fn display(mode: ProgressArg, quiet: bool) -> anyhow::Result<Option<Box<dyn Progress>>> {
    let terminal =
        std::io::stderr().is_terminal() && std::env::var_os("TERM").is_none_or(|t| t != "dumb");
    let tty = match mode {
        _ if quiet => return Ok(None),
        ProgressArg::Tty if !terminal => {
            bail!("--progress tty needs a terminal on stderr: use --progress plain")
        }
        ProgressArg::Tty => true,
        ProgressArg::Auto => terminal,
        ProgressArg::Plain | ProgressArg::Quiet => false,
    };
    Ok(Some(if tty {
        Box::new(TtyProgress::new())
    } else {
        Box::new(PlainProgress::new(std::io::stderr()))
    }))
}

/// Shows progress on the chosen display (none when quiet) and records the steps that ran.
struct Recorder {
    display: Option<Box<dyn Progress>>,
    steps: Vec<RecordedStep>,
}

impl Recorder {
    fn new(display: Option<Box<dyn Progress>>) -> Self {
        Self {
            display,
            steps: Vec::new(),
        }
    }
}

impl Progress for Recorder {
    fn step_started(&mut self, step: &StepInfo) {
        self.steps.push(RecordedStep {
            id: step.id,
            stage: step.stage.clone(),
            text: step.text.clone(),
            started: Instant::now(),
            seconds: 0.0,
            ok: false,
            cached: false,
        });
        if let Some(p) = &mut self.display {
            p.step_started(step);
        }
    }

    fn step_output(&mut self, step: usize, data: &[u8]) {
        if let Some(p) = &mut self.display {
            p.step_output(step, data);
        }
    }

    fn step_finished(&mut self, step: usize, outcome: &StepOutcome) {
        if let Some(s) = self.steps.iter_mut().find(|s| s.id == step) {
            s.seconds = s.started.elapsed().as_secs_f64();
            s.ok = matches!(outcome, StepOutcome::Done | StepOutcome::Cached);
            s.cached = *outcome == StepOutcome::Cached;
        }
        if let Some(p) = &mut self.display {
            p.step_finished(step, outcome);
        }
    }

    fn warning(&mut self, text: &str) {
        match &mut self.display {
            Some(p) => p.warning(text),
            None => eprintln!("{text}"),
        }
    }

    fn summary(&mut self, summary: &BuildSummary) {
        if let Some(p) = &mut self.display {
            p.summary(summary);
        }
    }
}
