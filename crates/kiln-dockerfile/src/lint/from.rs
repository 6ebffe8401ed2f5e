//! Checks on FROM lines, which see only the global scope: UndefinedArgInFrom,
//! InvalidDefaultArgInFrom, RedundantTargetPlatform and FromPlatformFlagConstDisallowed.
//!
//! The global scope is rebuilt here from the raw ARGs (automatic platform ARGs, then the ARGs
//! before the first FROM) so these checks also run when the stage layer gives up.

use std::collections::{BTreeMap, BTreeSet};

use kiln_shell::{Expansion, Lexer};

use crate::instructions::{Command, From, Instruction};
use crate::stages::{Platform, automatic_args};

use super::quote::go_quote;
use super::reference::{parse_platform, valid_image};
use super::rules;
use super::suggest::closest;
use super::{Hit, Input};

/// The global ARG scope, as FROM lines see it.
struct Globals {
    /// Variables with values.
    env: Vec<(String, String)>,
    /// Every name FROM may use: automatic ARGs and declared meta ARGs, with or without value.
    declared: Vec<String>,
}

pub(super) fn check(input: &Input<'_>) -> Vec<Hit> {
    let build_args = &input.opts.build_args;
    let lexer = Lexer::new(input.ast.directives.escape);
    let meta: Vec<&Command> = input
        .commands
        .iter()
        .take_while(|c| !matches!(c.instruction, Instruction::From(_)))
        .collect();
    let actual = globals(&lexer, &meta, build_args);
    let defaults = globals(&lexer, &meta, &BTreeMap::new());
    let mut hits = Vec::new();
    for command in &input.commands {
        let Instruction::From(from) = &command.instruction else {
            continue;
        };
        hits.extend(undefined_args(&lexer, &actual, from, command));
        hits.extend(invalid_default(&lexer, &defaults, from, command));
        if let Some(platform) = &from.platform {
            let Ok(expansion) = lexer.process_word(&platform.value, &actual.env) else {
                continue;
            };
            hits.extend(redundant_target(
                &actual,
                &platform.value,
                &expansion,
                command,
            ));
            hits.extend(const_platform(from, &expansion, command));
        }
    }
    hits
}

/// Automatic ARGs (build-args override them) then the meta ARGs: a build-arg, else the default
/// expanded with what came before.
fn globals(lexer: &Lexer, meta: &[&Command], build_args: &BTreeMap<String, String>) -> Globals {
    let host = Platform::host();
    let mut env = automatic_args(&host, &host, "");
    for (k, v) in &mut env {
        if let Some(value) = build_args.get(k.as_str()) {
            v.clone_from(value);
        }
    }
    let mut declared: Vec<String> = env.iter().map(|(k, _)| k.clone()).collect();
    for command in meta {
        let Instruction::Arg(arg) = &command.instruction else {
            continue;
        };
        for decl in &arg.args {
            let name = decl.name.value.clone();
            let value = match (build_args.get(&name), &decl.default) {
                (Some(v), _) => Some(v.clone()),
                (None, Some(d)) => lexer.process_word(&d.value, &env).ok().map(|e| e.value),
                (None, None) => None,
            };
            if let Some(value) = value {
                env.retain(|(k, _)| *k != name);
                env.push((name.clone(), value));
            }
            declared.push(name);
        }
    }
    Globals { env, declared }
}

/// Variables in the image or `--platform` that no ARG before the first FROM declares.
fn undefined_args(lexer: &Lexer, globals: &Globals, from: &From, command: &Command) -> Vec<Hit> {
    let mut unmatched = BTreeSet::new();
    let words = std::iter::once(&from.image).chain(from.platform.as_ref());
    for word in words {
        if let Ok(e) = lexer.process_word(&word.value, &globals.env) {
            unmatched.extend(e.unmatched);
        }
    }
    unmatched
        .into_iter()
        .filter(|name| !globals.declared.contains(name))
        .map(|name| {
            let mut msg = format!("FROM argument '{name}' is not declared");
            if let Some(best) = closest(&name, globals.declared.iter().map(String::as_str)) {
                msg.push_str(&format!(" (did you mean {best}?)"));
            }
            Hit::new(rules::UNDEFINED_ARG_IN_FROM, msg, command.span)
        })
        .collect()
}

/// The image name with only the ARG defaults (no build-args) must be a valid reference.
fn invalid_default(
    lexer: &Lexer,
    defaults: &Globals,
    from: &From,
    command: &Command,
) -> Option<Hit> {
    let expanded = lexer.process_word(&from.image.value, &defaults.env).ok()?;
    if valid_image(&expanded.value) {
        return None;
    }
    let msg = format!(
        "Default value for ARG {} results in empty or invalid base image name",
        from.image.value
    );
    Some(Hit::new(
        rules::INVALID_DEFAULT_ARG_IN_FROM,
        msg,
        command.span,
    ))
}

/// `--platform=$TARGETPLATFORM` (only that variable, giving exactly its value) is the default.
fn redundant_target(globals: &Globals, raw: &str, e: &Expansion, command: &Command) -> Option<Hit> {
    const TARGET: &str = "TARGETPLATFORM";
    let only_target = e.unmatched.is_empty() && e.matched.len() == 1 && e.matched.contains(TARGET);
    let value = globals
        .env
        .iter()
        .find(|(k, _)| k == TARGET)
        .map(|(_, v)| v.as_str());
    if !only_target || value != Some(e.value.as_str()) {
        return None;
    }
    let msg = format!(
        "Setting platform to predefined {raw} in FROM is redundant as this is the default behavior"
    );
    Some(Hit::new(
        rules::REDUNDANT_TARGET_PLATFORM,
        msg,
        command.span,
    ))
}

/// A `--platform` without variables pins the stage, unless the stage name mentions its OS or
/// architecture (a per-platform stage).
fn const_platform(from: &From, e: &Expansion, command: &Command) -> Option<Hit> {
    if !e.matched.is_empty() || !e.unmatched.is_empty() {
        return None;
    }
    let platform = parse_platform(&e.value)?;
    let name = from.name.as_ref().map_or("", |n| n.value.as_str());
    if name.contains(platform.os.as_str()) || name.contains(platform.arch.as_str()) {
        return None;
    }
    let msg = format!(
        "FROM --platform flag should not use constant value {}",
        go_quote(&e.value)
    );
    Some(Hit::new(
        rules::FROM_PLATFORM_FLAG_CONST_DISALLOWED,
        msg,
        command.span,
    ))
}
