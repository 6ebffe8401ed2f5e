//! Typed instructions: each [`Node`] becomes a [`Command`] holding an [`Instruction`], with every
//! flag BuildKit accepts checked and BuildKit's error messages, values still unexpanded.
//!
//! Variable expansion happens in [`crate::stages`], which knows the ARG/ENV scope.

mod chmod;
mod duration;
mod flags;
mod mount;
mod parse_copy;
mod parse_exec;
mod parse_simple;
mod suggest;
mod types;
mod values;

pub use chmod::{Action, Chmod, Clause, Op};
pub use duration::parse_go_duration;
pub use mount::{Mount, MountError, MountType, Sharing};
pub use types::*;
pub use values::{check_digest, parse_port_spec, parse_signal};

pub(crate) use parse_exec::mount_at;

use crate::ast::{Node, Span, Word};
use crate::{Error, Result};

/// The instruction keywords BuildKit knows, upper-case.
pub const KEYWORDS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// Converts one parsed node into a typed command; `source` is the Dockerfile text the node's
/// spans point into (it gives the keyword as written).
pub fn parse(node: &Node, source: &str) -> Result<Command> {
    let instruction = parse_instruction(node, source)?;
    Ok(Command {
        keyword: source
            .get(node.keyword_span.start..node.keyword_span.end)
            .unwrap_or(&node.keyword)
            .to_owned(),
        keyword_span: node.keyword_span,
        flags: node.flags.clone(),
        span: node.span,
        original: node.original.clone(),
        start_line: node.start_line,
        end_line: node.end_line,
        instruction,
    })
}

fn parse_instruction(node: &Node, source: &str) -> Result<Instruction> {
    Ok(match node.keyword.as_str() {
        "from" => Instruction::From(parse_simple::from(node)?),
        "run" => Instruction::Run(parse_exec::run(node)?),
        "cmd" => Instruction::Cmd(parse_exec::cmd(node)?),
        "entrypoint" => Instruction::Entrypoint(parse_exec::cmd(node)?),
        "healthcheck" => Instruction::Healthcheck(parse_exec::healthcheck(node)?),
        "shell" => Instruction::Shell(parse_exec::shell(node)?),
        "copy" => Instruction::Copy(parse_copy::copy(node)?),
        "add" => Instruction::Add(parse_copy::add(node)?),
        "env" => Instruction::Env(parse_simple::key_values(node, "ENV")?),
        "label" => Instruction::Label(parse_simple::key_values(node, "LABEL")?),
        "arg" => Instruction::Arg(parse_simple::arg(node)?),
        "workdir" => Instruction::Workdir(parse_simple::workdir(node)?),
        "user" => Instruction::User(parse_simple::user(node)?),
        "expose" => Instruction::Expose(parse_simple::expose(node)?),
        "volume" => Instruction::Volume(parse_simple::volume(node)?),
        "stopsignal" => Instruction::StopSignal(parse_simple::stopsignal(node)?),
        "maintainer" => Instruction::Maintainer(parse_simple::maintainer(node)?),
        "onbuild" => Instruction::Onbuild(parse_simple::onbuild(node, source)?),
        other => {
            let written = source
                .get(node.keyword_span.start..node.keyword_span.end)
                .unwrap_or(other);
            let msg = format!("unknown instruction: {written}");
            let msg = suggest::did_you_mean_any_case(msg, written, KEYWORDS);
            return Err(Error::new(msg, node.keyword_span));
        }
    })
}

/// A word as a spanned string.
fn spanned(word: &Word) -> Spanned<String> {
    Spanned::new(word.value.clone(), word.span)
}

/// Span of the arguments (after the keyword and flags), or of the keyword when there are none.
fn args_span(node: &Node) -> Span {
    match (node.args.first(), node.args.last()) {
        (Some(first), Some(last)) => Span {
            start: first.span.start,
            end: last.span.end,
        },
        _ => node.keyword_span,
    }
}

/// An error about the instruction's arguments as a whole.
fn args_error(node: &Node, message: impl Into<String>) -> Error {
    Error::new(message, args_span(node))
}

fn at_least_one(node: &Node, name: &str) -> Result<()> {
    if node.args.is_empty() {
        return Err(args_error(
            node,
            format!("{name} requires at least one argument"),
        ));
    }
    Ok(())
}

fn exactly_one(node: &Node, name: &str) -> Result<Spanned<String>> {
    match node.args.as_slice() {
        [word] => Ok(spanned(word)),
        _ => Err(args_error(
            node,
            format!("{name} requires exactly one argument"),
        )),
    }
}
