//! Stages: splits the typed instructions at each FROM and expands variables exactly where BuildKit
//! does, with its ARG scoping (global ARGs only in FROM unless re-declared, build-args override
//! defaults, ENV and ARG values visible from the next instruction on, `FROM <stage>` inheriting
//! the parent's variables and declared ARGs).
//!
//! kiln's one deliberate difference: variables in `COPY --from=` and `RUN --mount=from=` are
//! expanded (BuildKit refuses them, moby/moby#34482); each use is recorded so lint can flag it.
//! Stricter than BuildKit, which only warns: duplicate stage names and the reserved names
//! `scratch` and `context` are errors.

mod expand;
mod platform;
mod resolve;
mod scope;

use std::collections::{BTreeMap, BTreeSet};

use kiln_shell::Lexer;

use crate::ast::{Ast, Span};
use crate::instructions::{self, Command, Instruction, Spanned};
use crate::{Error, Result};

pub use platform::{PROXY_ARGS, Platform, automatic_args};
pub use scope::{DEFAULT_PATH, Scope};

/// How to evaluate the Dockerfile: the target and platforms behind the automatic ARGs, and the
/// ENV of base images (expansion in a stage starts from its base image's variables).
#[derive(Debug, Clone)]
pub struct StageOptions {
    /// The `--target` stage, if any (it sets `TARGETSTAGE`).
    pub target: Option<String>,
    pub target_platform: Platform,
    pub build_platform: Platform,
    /// Base image ENV by image name as written after expansion; unlisted images start with PATH only.
    pub image_env: BTreeMap<String, Vec<(String, String)>>,
}

impl Default for StageOptions {
    fn default() -> Self {
        Self {
            target: None,
            target_platform: Platform::host(),
            build_platform: Platform::host(),
            image_env: BTreeMap::new(),
        }
    }
}

/// What a stage is built on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    Scratch,
    /// An earlier stage, by index.
    Stage(usize),
    Image(String),
}

/// An instruction after expansion, with what lint and the planner need to know about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expanded {
    /// The instruction with its variables substituted.
    pub command: Command,
    /// Variables referenced but defined nowhere in scope (for the UndefinedVar lint).
    pub undefined_vars: BTreeSet<String>,
    /// Spans of `COPY --from=`/`mount from=` values that used variables (kiln-only behaviour).
    pub variable_from: Vec<Span>,
    /// The variables in effect before this instruction: what a RUN sees as its environment.
    pub env: Vec<(String, String)>,
    /// Declared ARGs and their values before this instruction (BuildKit's `|N k=v` RUN prefix).
    pub run_args: Vec<(String, String)>,
}

/// One build stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub index: usize,
    /// Lower-cased `AS` name.
    pub name: Option<Spanned<String>>,
    /// The FROM instruction, its image expanded with the global ARGs.
    pub from: Command,
    pub base: Base,
    /// `--platform`, expanded with the global ARGs.
    pub platform: Option<Spanned<String>>,
    /// Undefined variables in the FROM line (for the UndefinedArgInFrom lint).
    pub undefined_vars: BTreeSet<String>,
    pub instructions: Vec<Expanded>,
    /// The variables and declared ARGs at the end of the stage (what `FROM <this stage>` inherits).
    pub scope: Scope,
}

impl Stage {
    /// The name BuildKit uses in messages: the `AS` name or `stage-N`.
    pub fn display_name(&self) -> String {
        self.name
            .as_ref()
            .map_or_else(|| format!("stage-{}", self.index), |n| n.value.clone())
    }
}

/// A Dockerfile resolved into stages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    pub escape: char,
    /// ARGs before the first FROM, expanded.
    pub meta_args: Vec<Expanded>,
    /// The global scope FROM lines see: automatic ARGs, then meta ARGs with values.
    pub global_args: Vec<(String, String)>,
    pub stages: Vec<Stage>,
}

impl Dockerfile {
    /// The index of the stage called `name` (case-insensitive), for `--target`.
    pub fn stage_index(&self, name: &str) -> Result<usize> {
        self.stages
            .iter()
            .position(|s| {
                s.name
                    .as_ref()
                    .is_some_and(|n| n.value.eq_ignore_ascii_case(name))
            })
            .ok_or_else(|| {
                Error::new(
                    format!("target stage {name:?} could not be found"),
                    Span::default(),
                )
            })
    }

    /// The stage to build: `target` if given, else the last one.
    pub fn target(&self, target: Option<&str>) -> Result<usize> {
        match target {
            Some(name) => self.stage_index(name),
            None => Ok(self.stages.len().saturating_sub(1)),
        }
    }
}

/// Splits `ast` into stages and expands every instruction, `build_args` overriding ARG defaults.
pub fn stages(
    ast: &Ast,
    source: &str,
    build_args: &BTreeMap<String, String>,
    opts: &StageOptions,
) -> Result<Dockerfile> {
    let (meta, raw) = split(ast, source)?;
    resolve::check_names(&raw)?;
    let names: Vec<Option<String>> = raw.iter().map(|(from, _)| stage_name(from)).collect();
    let target_stage = opts
        .target
        .clone()
        .or_else(|| names.last().cloned().flatten())
        .unwrap_or_default();
    let lexer = Lexer::new(ast.directives.escape);
    let heredoc_lexer = Lexer::new('\\');
    let mut global = automatic_args(&opts.target_platform, &opts.build_platform, &target_stage);
    for (k, v) in global.iter_mut() {
        if let Some(over) = build_args.get(k.as_str()) {
            v.clone_from(over);
        }
    }
    let meta_args = expand::meta_args(meta, &mut global, build_args, &lexer)?;
    let global_names = declared_names(&meta_args);
    let mut stages: Vec<Stage> = Vec::with_capacity(raw.len());
    for (index, (from, commands)) in raw.into_iter().enumerate() {
        let ctx = expand::Ctx {
            lexer: &lexer,
            heredoc_lexer: &heredoc_lexer,
            global: &global,
            global_names: &global_names,
            build_args,
            names: &names,
            index,
        };
        let stage = expand::stage(&ctx, from, commands, &stages, opts)?;
        stages.push(stage);
    }
    Ok(Dockerfile {
        escape: ast.directives.escape,
        meta_args,
        global_args: global,
        stages,
    })
}

/// A stage before expansion: its FROM and the commands under it.
type RawStage = (Command, Vec<Command>);

/// Parses every node; ARGs before the first FROM are meta ARGs, anything else there is an error.
fn split(ast: &Ast, source: &str) -> Result<(Vec<Command>, Vec<RawStage>)> {
    let mut meta = Vec::new();
    let mut raw: Vec<RawStage> = Vec::new();
    for node in &ast.nodes {
        let command = instructions::parse(node, source)?;
        match (&command.instruction, raw.last_mut()) {
            (Instruction::From(_), _) => raw.push((command, Vec::new())),
            (_, Some((_, commands))) => commands.push(command),
            (Instruction::Arg(_), None) => meta.push(command),
            (_, None) => return Err(Error::new("no build stage in current context", node.span)),
        }
    }
    if raw.is_empty() {
        return Err(Error::new(
            "dockerfile contains no stages to build",
            Span::default(),
        ));
    }
    Ok((meta, raw))
}

/// Every name the meta ARGs declare.
fn declared_names(meta_args: &[Expanded]) -> BTreeSet<String> {
    let decls = meta_args
        .iter()
        .filter_map(|e| match &e.command.instruction {
            Instruction::Arg(a) => Some(a.args.iter().map(|d| d.name.value.clone())),
            _ => None,
        });
    decls.flatten().collect()
}

fn stage_name(from: &Command) -> Option<String> {
    match &from.instruction {
        Instruction::From(f) => f.name.as_ref().map(|n| n.value.clone()),
        _ => None,
    }
}
