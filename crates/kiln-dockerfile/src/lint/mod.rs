//! Build checks: BuildKit's checks that need no base image (`docker build --check`), with its
//! rule names, descriptions, URLs and messages, plus two of kiln's own
//! (`RunRecursiveOwnership`, `FromVariableNotPortable`).
//!
//! Differences from BuildKit, all because no base image is pulled: base images are taken to
//! define only `PATH` unless [`LintOptions::image_env`] lists their ENV (UndefinedVar), and to
//! set no `SHELL` (JSONArgsRecommended).
//! Every stage is checked, as `--call=check` does, not only the target's. When kiln's stage
//! layer cannot resolve the stages (BuildKit only warns about duplicate or reserved stage names,
//! kiln refuses them), the report carries that error and the checks on expanded stages
//! (UndefinedVar, WorkdirRelativePath, Expose*, CopyIgnoredFile, RunRecursiveOwnership) do not
//! run.

mod config;
mod from;
mod ownership;
mod quote;
mod reference;
mod render;
pub mod rules;
mod semantic;
mod suggest;
mod syntax;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kiln_context::IgnoreMatcher;

use crate::ast::{Ast, Span};
use crate::instructions::{self, Command};
use crate::stages::{self, StageOptions};

pub use config::CheckConfig;
pub use render::{render_json, render_text};
pub use rules::Rule;

/// The build-arg BuildKit reads the check configuration from, overriding `# check=`.
pub const CHECK_BUILD_ARG: &str = "BUILDKIT_DOCKERFILE_CHECK";

/// What the checks may know beyond the Dockerfile text.
#[derive(Debug, Clone, Default)]
pub struct LintOptions {
    /// `--build-arg` values (they change expansion, and may carry `BUILDKIT_DOCKERFILE_CHECK`).
    pub build_args: BTreeMap<String, String>,
    /// The build context directory, where `.dockerignore` is read from (CopyIgnoredFile).
    pub context: Option<PathBuf>,
    /// The Dockerfile's path: a `<Dockerfile>.dockerignore` beside it wins over the context's.
    pub dockerfile: Option<PathBuf>,
    /// `.dockerignore` patterns given directly; they win over reading files.
    pub dockerignore: Option<Vec<String>>,
    /// Base images' ENV by image name as written after expansion (as in
    /// [`StageOptions::image_env`]); images not listed are taken to define only `PATH`.
    pub image_env: BTreeMap<String, Vec<(String, String)>>,
}

/// How serious a finding is: `error=true` in `# check=` makes every finding an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Warning,
    Error,
}

/// One check that fired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub rule: &'static str,
    pub description: &'static str,
    /// BuildKit's documentation link; empty for kiln's own checks.
    pub url: String,
    pub message: String,
    /// Where it fired: usually the whole instruction, as BuildKit reports it.
    pub span: Span,
    /// 1-based line and column of the span's start.
    pub line: usize,
    pub col: usize,
    /// 1-based last line the span covers (continuation lines, heredocs).
    pub end_line: usize,
    pub level: Level,
}

/// All findings, in source order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LintReport {
    pub findings: Vec<Finding>,
    /// True when `error=true` is set and some check fired: the build must fail.
    pub error: bool,
    /// The Dockerfile parses but its stages cannot be resolved (an undefined base image, an
    /// unparsable platform, a duplicate stage name...): the build would fail with this error,
    /// and the checks that need expanded stages did not run. The other findings still stand,
    /// as in BuildKit's check results.
    pub build_error: Option<crate::Error>,
}

impl LintReport {
    /// BuildKit's build failure under `error=true`: `lint violation found for rules: A, B`
    /// (each rule once, sorted); `None` when the build may go on.
    pub fn violation_message(&self) -> Option<String> {
        if !self.error {
            return None;
        }
        let rules: std::collections::BTreeSet<&str> =
            self.findings.iter().map(|f| f.rule).collect();
        let list: Vec<&str> = rules.into_iter().collect();
        Some(format!(
            "lint violation found for rules: {}",
            list.join(", ")
        ))
    }
}

/// Why linting could not run.
#[derive(Debug, thiserror::Error)]
pub enum LintError {
    /// The Dockerfile does not parse (including unknown instructions and bad flags) or its
    /// `# check=` value is invalid.
    #[error(transparent)]
    Dockerfile(#[from] crate::Error),
    #[error(transparent)]
    Dockerignore(#[from] kiln_context::Error),
}

/// A check that fired, before it is placed in the source.
#[derive(Debug, Clone)]
struct Hit {
    rule: Rule,
    message: String,
    span: Span,
}

impl Hit {
    fn new(rule: Rule, message: String, span: Span) -> Self {
        Self {
            rule,
            message,
            span,
        }
    }
}

/// The parsed file as the checks see it.
struct Input<'a> {
    source: &'a str,
    ast: &'a Ast,
    opts: &'a LintOptions,
    /// One typed command per AST node, in order.
    commands: Vec<Command>,
}

/// Runs every enabled check over `source`. A Dockerfile that does not parse is an error, not
/// a finding.
pub fn lint(source: &str, opts: &LintOptions) -> Result<LintReport, LintError> {
    let ast = crate::parser::parse(source)?;
    let config = check_config(source, &ast, opts)?;
    let commands = ast
        .nodes
        .iter()
        .map(|node| instructions::parse(node, source))
        .collect::<crate::Result<Vec<_>>>()?;
    let input = Input {
        source,
        ast: &ast,
        opts,
        commands,
    };
    let mut hits = syntax::check(&input);
    hits.extend(from::check(&input));
    let stage_opts = StageOptions {
        image_env: opts.image_env.clone(),
        ..StageOptions::default()
    };
    let build_error = match stages::stages(&ast, source, &opts.build_args, &stage_opts) {
        Ok(dockerfile) => {
            let ignore = ignore_matcher(&config, opts)?;
            hits.extend(semantic::check(&dockerfile, ignore.as_ref()));
            None
        }
        Err(e) => Some(e),
    };
    let mut report = report(source, hits, &config);
    report.build_error = build_error;
    Ok(report)
}

/// The check configuration: the build-arg wins over the directive.
fn check_config(source: &str, ast: &Ast, opts: &LintOptions) -> Result<CheckConfig, crate::Error> {
    let text = match opts.build_args.get(CHECK_BUILD_ARG) {
        Some(value) => value.as_str(),
        None => ast.directives.check.as_deref().unwrap_or(""),
    };
    CheckConfig::parse(text).map_err(|message| {
        crate::Error::new(
            format!("failed to parse check options: {message}"),
            directive_span(source, text),
        )
    })
}

/// Where the `# check=` value sits in the leading comment lines, for error messages.
fn directive_span(source: &str, value: &str) -> Span {
    let mut start = 0;
    for line in source.split_inclusive('\n') {
        if value.is_empty() || !line.trim_start().starts_with('#') {
            break;
        }
        if let Some(i) = line.find(value) {
            return Span {
                start: start + i,
                end: start + i + value.len(),
            };
        }
        start += line.len();
    }
    Span::default()
}

/// The `.dockerignore` matcher, built only when CopyIgnoredFile is enabled: the patterns given
/// directly, else `<Dockerfile>.dockerignore` beside the Dockerfile, else the context's
/// `.dockerignore`. Without a Dockerfile path (a Dockerfile read from stdin) only the context's
/// file counts, as BuildKit then has no file to put the `.dockerignore` suffix on.
fn ignore_matcher(
    config: &CheckConfig,
    opts: &LintOptions,
) -> Result<Option<IgnoreMatcher>, kiln_context::Error> {
    if !config.enabled(&rules::COPY_IGNORED_FILE) {
        return Ok(None);
    }
    let matcher = match (&opts.dockerignore, &opts.context) {
        (Some(patterns), _) => IgnoreMatcher::from_patterns(patterns)?,
        // An empty path has no file name, so no `<Dockerfile>.dockerignore` is looked for.
        (None, Some(ctx)) => {
            IgnoreMatcher::from_context(ctx, opts.dockerfile.as_deref().unwrap_or(Path::new("")))?
        }
        (None, None) => return Ok(None),
    };
    Ok((!matcher.is_empty()).then_some(matcher))
}

/// Drops disabled checks, places the rest in the source and orders them.
fn report(source: &str, hits: Vec<Hit>, config: &CheckConfig) -> LintReport {
    let level = if config.error {
        Level::Error
    } else {
        Level::Warning
    };
    let mut findings: Vec<Finding> = hits
        .into_iter()
        .filter(|h| config.enabled(&h.rule))
        .map(|h| {
            let (line, col) = crate::error::line_col(source, h.span.start);
            let last = h.span.end.max(h.span.start + 1) - 1;
            let end_line = crate::error::line_col(source, last).0.max(line);
            Finding {
                rule: h.rule.name,
                description: h.rule.description,
                url: h.rule.url(),
                message: h.message,
                span: h.span,
                line,
                col,
                end_line,
                level,
            }
        })
        .collect();
    findings.sort_by_key(|f| (f.line, f.col));
    let error = config.error && !findings.is_empty();
    LintReport {
        findings,
        error,
        build_error: None,
    }
}
