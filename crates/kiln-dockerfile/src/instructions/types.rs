//! The typed instructions: one struct per Dockerfile instruction, values kept with their spans.

use std::time::Duration;

use crate::ast::{Flag, Heredoc, Span};

use super::chmod::Chmod;
use super::mount::Mount;

/// A value together with the source span it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: Span) -> Self {
        Self { value, span }
    }
}

/// A flag value that has a typed meaning (`--chmod`, `--mount`): its text and, once known, its type.
///
/// `value` is `None` only while `text` still holds unexpanded variables: before
/// [`crate::stages::stages`] has expanded it, or inside an ONBUILD trigger (never expanded here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Typed<T> {
    pub text: String,
    pub span: Span,
    pub value: Option<T>,
}

/// Where `COPY --from` or `RUN --mount=from=` reads from, once resolved against the stages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An earlier stage, by index.
    Stage(usize),
    /// Anything that is not a stage is an image reference.
    Image(String),
}

/// One instruction with what every instruction has: where it is and how it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The keyword as written (`from`, `From`, `FROM`): the casing lint needs it.
    pub keyword: String,
    pub keyword_span: Span,
    /// The flags as written, with their spans.
    pub flags: Vec<Flag>,
    /// The whole instruction, continuation lines and heredoc bodies included.
    pub span: Span,
    /// The logical line with continuations joined (BuildKit's `Original`).
    pub original: String,
    pub start_line: usize,
    pub end_line: usize,
    pub instruction: Instruction,
}

/// A typed Dockerfile instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    From(From),
    Run(Run),
    Cmd(CommandLine),
    Entrypoint(CommandLine),
    Copy(Copy),
    Add(Add),
    Workdir(Workdir),
    Env(KeyValues),
    Label(KeyValues),
    Arg(Arg),
    User(User),
    Expose(Expose),
    Volume(Volume),
    Shell(Shell),
    Healthcheck(Healthcheck),
    StopSignal(StopSignal),
    Onbuild(Onbuild),
    Maintainer(Maintainer),
}

impl Instruction {
    /// The upper-case instruction name, as BuildKit prints it in messages.
    pub fn name(&self) -> &'static str {
        match self {
            Self::From(_) => "FROM",
            Self::Run(_) => "RUN",
            Self::Cmd(_) => "CMD",
            Self::Entrypoint(_) => "ENTRYPOINT",
            Self::Copy(_) => "COPY",
            Self::Add(_) => "ADD",
            Self::Workdir(_) => "WORKDIR",
            Self::Env(_) => "ENV",
            Self::Label(_) => "LABEL",
            Self::Arg(_) => "ARG",
            Self::User(_) => "USER",
            Self::Expose(_) => "EXPOSE",
            Self::Volume(_) => "VOLUME",
            Self::Shell(_) => "SHELL",
            Self::Healthcheck(_) => "HEALTHCHECK",
            Self::StopSignal(_) => "STOPSIGNAL",
            Self::Onbuild(_) => "ONBUILD",
            Self::Maintainer(_) => "MAINTAINER",
        }
    }
}

/// `FROM [--platform=P] image [AS name]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct From {
    pub image: Spanned<String>,
    /// The stage name, lower-cased (stage names are case-insensitive).
    pub name: Option<Spanned<String>>,
    pub platform: Option<Spanned<String>>,
}

/// Exec form (`["a","b"]`) or shell form (run through the stage's SHELL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Form {
    Exec,
    Shell,
}

/// The command of RUN, CMD, ENTRYPOINT (and HEALTHCHECK CMD).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    pub form: Form,
    /// Exec form: one entry per element. Shell form: a single entry with the whole line.
    pub args: Vec<Spanned<String>>,
    /// Heredoc bodies the command refers to (`RUN <<EOF`).
    pub heredocs: Vec<Heredoc>,
}

/// `RUN --network=` modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkMode {
    Default,
    None,
    Host,
}

/// `RUN --security=` modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityMode {
    Sandbox,
    Insecure,
}

/// `RUN [--mount=...]... [--network=...] [--security=...] command`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub command: CommandLine,
    pub mounts: Vec<Typed<Mount>>,
    pub network: Option<Spanned<NetworkMode>>,
    pub security: Option<Spanned<SecurityMode>>,
}

/// A `COPY`/`ADD` source written as a heredoc: a file made from the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineSource {
    /// The file name: the heredoc delimiter.
    pub path: String,
    pub content: String,
    /// False when the delimiter was quoted: the body is taken literally.
    pub expand: bool,
    pub span: Span,
}

/// Sources and destination shared by COPY and ADD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub sources: Vec<Spanned<String>>,
    pub inline_sources: Vec<InlineSource>,
    pub dest: Spanned<String>,
    pub chown: Option<Spanned<String>>,
    pub chmod: Option<Typed<Chmod>>,
    pub link: bool,
    pub excludes: Vec<Spanned<String>>,
    /// True when the sources are given as a JSON array.
    pub json: bool,
}

/// `COPY [--from=] [--parents] ... src... dest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    pub transfer: Transfer,
    pub from: Option<Spanned<String>>,
    /// `--from` resolved against the stages (set by [`crate::stages::stages`]).
    pub source: Option<Source>,
    pub parents: bool,
}

/// `ADD [--checksum=] [--keep-git-dir] [--unpack] ... src... dest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Add {
    pub transfer: Transfer,
    pub checksum: Option<Spanned<String>>,
    pub keep_git_dir: bool,
    /// `None` when `--unpack` was not given (ADD's default then applies).
    pub unpack: Option<bool>,
}

/// `WORKDIR path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workdir {
    pub path: Spanned<String>,
}

/// One `key=value` of ENV or LABEL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: Spanned<String>,
    pub value: Spanned<String>,
    /// True for the legacy `ENV key value` form (no `=`), which the LegacyKeyValueFormat lint flags.
    pub legacy: bool,
}

/// ENV or LABEL pairs, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValues {
    pub pairs: Vec<KeyValue>,
}

/// One name of an ARG instruction, with its default if written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    pub name: Spanned<String>,
    /// The default as written (unexpanded).
    pub default: Option<Spanned<String>>,
    /// The value the ARG takes (build-arg, expanded default or inherited global), set by
    /// [`crate::stages::stages`]; `None` before that or when the ARG has no value.
    pub value: Option<String>,
}

/// `ARG name[=default] ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    pub args: Vec<ArgDecl>,
}

/// `USER user[:group]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub user: Spanned<String>,
}

impl User {
    /// The user and the optional group of `user[:group]`.
    pub fn split(&self) -> (&str, Option<&str>) {
        match self.user.value.split_once(':') {
            Some((user, group)) => (user, Some(group)),
            None => (&self.user.value, None),
        }
    }
}

/// `EXPOSE port[/proto]...` (sorted as BuildKit sorts them before expansion).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expose {
    pub ports: Vec<Spanned<String>>,
}

/// `VOLUME path...` or `VOLUME ["path", ...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub paths: Vec<Spanned<String>>,
}

/// `SHELL ["exe", "arg"...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shell {
    pub shell: Vec<Spanned<String>>,
}

/// The probe of a HEALTHCHECK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthTest {
    /// `HEALTHCHECK NONE`: disable the base image's check.
    None,
    /// `HEALTHCHECK CMD ...` (config `Test` is `CMD` or `CMD-SHELL` plus the command).
    Cmd(CommandLine),
}

/// `HEALTHCHECK [options] CMD command` or `HEALTHCHECK NONE`. Zero durations mean "not set".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthcheck {
    pub test: HealthTest,
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub start_interval: Duration,
    pub retries: u32,
}

/// `STOPSIGNAL signal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopSignal {
    pub signal: Spanned<String>,
}

/// `ONBUILD instruction`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Onbuild {
    /// The trigger text stored in the image config (`OnBuild`), heredoc bodies appended.
    pub expression: String,
    pub trigger: Box<Command>,
}

/// `MAINTAINER name` (deprecated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maintainer {
    pub name: Spanned<String>,
}
