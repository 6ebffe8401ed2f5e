//! Command-line syntax: docker-compatible names and flags where a docker command has a twin.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "kiln",
    version,
    about = "A fast, daemonless builder for multi-stage Dockerfiles",
    after_help = "Examples:\n  kiln import rootfs.tar lab/busybox:1 -c 'CMD [\"sh\"]'\n  kiln build -t app:1 .\n  kiln images -a\n  kiln image prune -f --filter label=stage=builder\n  kiln outline --target build .\n  kiln lint -f app/Dockerfile\n  kiln save -o app.tar app:latest\n\nRun `kiln COMMAND --help` for a command's flags and examples."
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
    #[command(flatten)]
    pub registry: crate::commands::registry::RegistryArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build an image from a Dockerfile and a context
    #[command(
        after_help = "Examples:\n  kiln build -t app:1 .\n  kiln build --target builder -t app:builder .\n  kiln build -f docker/Dockerfile --build-arg VERSION=2 -o type=docker,dest=app.tar .\n  tar -c . | kiln build -t app -\n\nRUN steps run in isolated containers (namespaces, overlayfs); `--network default` gives them the\nhost's network, `--network none` only loopback."
    )]
    Build(Box<crate::commands::build::BuildArgs>),
    /// Show the stages, what the target needs and in which order, and the ARGs that matter
    #[command(
        after_help = "Examples:\n  kiln outline .\n  kiln outline --target build --format json .\n  kiln outline -f docker/Dockerfile --build-arg VERSION=2 ."
    )]
    Outline(OutlineArgs),
    /// Run BuildKit's build checks (and kiln's own) on a Dockerfile
    #[command(
        after_help = "Examples:\n  kiln lint\n  kiln lint -f app/Dockerfile --format json\n\nA `# check=skip=Rule1,Rule2;error=true` line at the top of the Dockerfile skips rules or makes findings fatal."
    )]
    Lint(LintArgs),
    /// Import a root filesystem tarball as a one-layer image (like `docker import`)
    #[command(after_help = IMPORT_EXAMPLES)]
    Import(ImportArgs),
    /// Load images from a docker-archive, OCI archive or OCI layout directory (like `docker load`)
    #[command(after_help = LOAD_EXAMPLES)]
    Load(LoadArgs),
    /// Save images to a tar archive, docker-archive or OCI (like `docker save`)
    #[command(after_help = SAVE_EXAMPLES)]
    Save(SaveArgs),
    /// List images (like `docker images`)
    #[command(after_help = IMAGES_EXAMPLES)]
    Images(ImagesArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    #[command(after_help = TAG_EXAMPLES)]
    Tag(TagArgs),
    /// Remove one or more images (like `docker rmi`)
    #[command(after_help = RMI_EXAMPLES)]
    Rmi(RmiArgs),
    /// Show low-level information on images as JSON (like `docker image inspect`)
    #[command(after_help = INSPECT_EXAMPLES)]
    Inspect(InspectArgs),
    /// Show the history of an image
    #[command(after_help = HISTORY_EXAMPLES)]
    History(HistoryArgs),
    /// Manage images: ls, prune, rm, inspect, history, tag, load, save, import
    #[command(subcommand)]
    Image(ImageCommand),
    /// Store-wide commands: df, check
    #[command(subcommand)]
    System(SystemCommand),
    /// Build cache commands: du, prune
    #[command(subcommand)]
    Builder(crate::commands::builder::BuilderCommand),
    /// Download an image from a registry into the store (like `docker pull`)
    #[command(after_help = PULL_EXAMPLES)]
    Pull(crate::commands::registry::PullArgs),
    /// Upload an image from the store to a registry (like `docker push`)
    #[command(after_help = PUSH_EXAMPLES)]
    Push(crate::commands::registry::PushArgs),
    /// Log in to a registry; credentials go to the docker config (like `docker login`)
    #[command(after_help = LOGIN_EXAMPLES)]
    Login(crate::commands::registry::LoginArgs),
    /// Log out from a registry (like `docker logout`)
    #[command(after_help = LOGOUT_EXAMPLES)]
    Logout(crate::commands::registry::LogoutArgs),
}

const PULL_EXAMPLES: &str = "Examples:\n  kiln pull busybox:1.36\n  kiln pull --platform linux/arm64 debian:bookworm\n  kiln --insecure-registry registry.lan:5000 pull registry.lan:5000/team/base:1\n\nCredentials come from ~/.docker/config.json ($DOCKER_CONFIG), CA certificates from\n/etc/docker/certs.d/HOST[:PORT]/*.crt (or --certs-dir).";
const PUSH_EXAMPLES: &str = "Examples:\n  kiln tag app:1 localhost:5000/team/app:1\n  kiln push localhost:5000/team/app:1\n  kiln build --push -t registry.example.com/team/app:2 .";
const LOGIN_EXAMPLES: &str = "Examples:\n  echo \"$TOKEN\" | kiln login -u ci --password-stdin registry.example.com\n  kiln login -u admin -p secret localhost:5000";
const LOGOUT_EXAMPLES: &str =
    "Examples:\n  kiln logout registry.example.com\n  kiln logout localhost:5000";

const IMPORT_EXAMPLES: &str = "Examples:\n  kiln import rootfs.tar lab/busybox:1 -c 'CMD [\"sh\"]' -c 'ENV PATH=/usr/bin:/bin'\n  gzip -dc rootfs.tar.gz | kiln import - base:latest -m 'from the release tarball'";
const LOAD_EXAMPLES: &str = "Examples:\n  kiln load -i busybox.tar\n  docker save busybox | kiln load\n  kiln load -i ./oci-layout-dir";
const SAVE_EXAMPLES: &str = "Examples:\n  kiln save -o app.tar app:latest\n  kiln save app:latest | docker load\n  kiln save --format oci -o app-oci.tar app:latest base:1";
const IMAGES_EXAMPLES: &str = "Examples:\n  kiln images\n  kiln images -a --filter label=stage=builder\n  kiln images busybox --digests\n  kiln images --format json\n  kiln images --format '{{.Repository}}:{{.Tag}}'";
const TAG_EXAMPLES: &str =
    "Examples:\n  kiln tag busybox:latest lab/busybox:1\n  kiln tag 0123456789ab myapp:v2";
const RMI_EXAMPLES: &str = "Examples:\n  kiln rmi lab/busybox:1\n  kiln rmi -f 0123456789ab";
const INSPECT_EXAMPLES: &str = "Examples:\n  kiln inspect busybox:latest\n  kiln inspect -f '{{.Id}}' app\n  kiln inspect -f '{{json .Config}}' app";
const HISTORY_EXAMPLES: &str =
    "Examples:\n  kiln history app:latest\n  kiln history --no-trunc app:latest";
const LS_EXAMPLES: &str = "Examples:\n  kiln image ls\n  kiln image ls --filter dangling=true -q";
const PRUNE_EXAMPLES: &str = "Examples:\n  kiln image prune -f --filter label=stage=builder\n  kiln image prune -a --filter until=24h";
const DF_EXAMPLES: &str = "Examples:\n  kiln system df\n  kiln system df -v";
const CHECK_EXAMPLES: &str = "Examples:\n  kiln system check\n  kiln system check --repair";

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// List images
    #[command(visible_alias = "list", after_help = LS_EXAMPLES)]
    Ls(ImagesArgs),
    /// Remove dangling images (with -a, all images), then free unused blobs
    #[command(after_help = PRUNE_EXAMPLES)]
    Prune(PruneArgs),
    /// Remove one or more images
    #[command(visible_alias = "remove", after_help = RMI_EXAMPLES)]
    Rm(RmiArgs),
    /// Show low-level information on images as JSON
    #[command(after_help = INSPECT_EXAMPLES)]
    Inspect(InspectArgs),
    /// Show the history of an image
    #[command(after_help = HISTORY_EXAMPLES)]
    History(HistoryArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    #[command(after_help = TAG_EXAMPLES)]
    Tag(TagArgs),
    /// Load images from an archive or OCI layout directory
    #[command(after_help = LOAD_EXAMPLES)]
    Load(LoadArgs),
    /// Save images to a tar archive
    #[command(after_help = SAVE_EXAMPLES)]
    Save(SaveArgs),
    /// Import a root filesystem tarball as a one-layer image
    #[command(after_help = IMPORT_EXAMPLES)]
    Import(ImportArgs),
}

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Show disk usage of the store
    #[command(after_help = DF_EXAMPLES)]
    Df(DfArgs),
    /// Verify every blob and metadata reference; exit 1 when something is broken
    #[command(after_help = CHECK_EXAMPLES)]
    Check(CheckArgs),
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

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Root filesystem tarball (plain or gzip); `-` reads stdin
    #[arg(value_name = "FILE|-")]
    pub file: PathBuf,
    /// Name to give the image
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
    /// Apply a Dockerfile instruction to the image config (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR, ...)
    #[arg(short = 'c', long = "change", value_name = "INSTRUCTION")]
    pub changes: Vec<String>,
    /// Commit message recorded in the image history (default: "Imported from FILE")
    #[arg(short = 'm', long = "message")]
    pub message: Option<String>,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Read from a tar archive (docker-archive or OCI, plain or gzip) or an OCI layout directory, instead of stdin
    #[arg(short = 'i', long = "input", value_name = "FILE|DIR")]
    pub input: Option<PathBuf>,
    /// Suppress the progress output (kiln prints none; accepted for docker compatibility)
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ArchiveFormat {
    /// docker-archive that `docker load` reads (also a valid OCI layout)
    Docker,
    /// OCI image layout tar (`oci-archive:FILE`)
    Oci,
}

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Write to a file instead of stdout (`-` is stdout)
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Archive format
    #[arg(long, value_enum, default_value_t = ArchiveFormat::Docker)]
    pub format: ArchiveFormat,
    /// Images to save, by name, ID or digest
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Only images of this repository (a `reference=` filter; globs allowed)
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
    /// Show all images (by default intermediate build-stage images are hidden)
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Filter: dangling=true|false, label=KEY[=VALUE], label!=..., reference=PATTERN, until=DURATION, since=IMAGE, before=IMAGE
    #[arg(long = "filter", value_name = "KEY=VALUE")]
    pub filters: Vec<String>,
    /// `table` (default), `json` (one object a line) or a Go template such as '{{.Repository}}:{{.Tag}}'
    #[arg(long)]
    pub format: Option<String>,
    /// Only show image IDs
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
}

#[derive(Debug, Args)]
pub struct TagArgs {
    /// Image to tag, by name, ID or digest
    #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
    pub source: String,
    /// New name
    #[arg(value_name = "TARGET_IMAGE[:TAG]")]
    pub target: String,
}

#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Remove an image by ID even when it is tagged in several repositories
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    /// Images to remove, by name, ID or digest
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Also remove tagged images (kiln runs no containers, so none is in use)
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    /// Filter: label=KEY[=VALUE], label!=KEY[=VALUE], until=DURATION|TIMESTAMP
    #[arg(long = "filter", value_name = "KEY=VALUE")]
    pub filters: Vec<String>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format each image with a Go template (subset: {{.Field.Sub}}, {{json .Field}})
    #[arg(short = 'f', long = "format")]
    pub format: Option<String>,
    /// Images to inspect, by name, ID or digest
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Image, by name, ID or digest
    #[arg(value_name = "IMAGE")]
    pub image: String,
}

#[derive(Debug, Args)]
pub struct DfArgs {
    /// Show a line per image
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Remove corrupt blobs, images that lost blobs, and leftovers of interrupted work
    #[arg(long)]
    pub repair: bool,
}
