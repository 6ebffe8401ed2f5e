//! Checks that need only the parsed instructions, no variable expansion: casing, stage names,
//! MAINTAINER, legacy `ENV k v`, secret-looking ARG/ENV names, shell-form CMD/ENTRYPOINT and
//! repeated CMD/ENTRYPOINT/HEALTHCHECK.

use std::collections::BTreeSet;

use crate::ast::{Node, Span};
use crate::instructions::{Command, Form, Instruction};

use super::quote::go_quote;
use super::rules;
use super::{Hit, Input};

pub(super) fn check(input: &Input<'_>) -> Vec<Hit> {
    let mut hits = empty_continuations(input);
    hits.extend(instruction_casing(input));
    hits.extend(stage_names(input));
    let mut in_stage = false;
    for command in &input.commands {
        in_stage |= matches!(command.instruction, Instruction::From(_));
        hits.extend(per_command(command, in_stage));
    }
    for stage in split_stages(&input.commands) {
        hits.extend(stage.checks());
    }
    hits
}

/// The source span of 1-based `line` (without its newline).
fn line_span(source: &str, line: usize) -> Span {
    let mut start = 0;
    for (i, text) in source.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            let len = text.trim_end_matches(['\n', '\r']).len();
            return Span {
                start,
                end: start + len,
            };
        }
        start += text.len();
    }
    Span {
        start: source.len(),
        end: source.len(),
    }
}

/// The parser's NoEmptyContinuation warnings, placed on the instruction's last line as
/// BuildKit does.
fn empty_continuations(input: &Input<'_>) -> Vec<Hit> {
    let rule = rules::NO_EMPTY_CONTINUATION;
    input
        .ast
        .warnings
        .iter()
        .filter(|w| w.rule == Some(rule.name))
        .map(|w| {
            Hit::new(
                rule,
                "Empty continuation line".into(),
                line_span(input.source, w.line),
            )
        })
        .collect()
}

fn keyword<'s>(source: &'s str, node: &Node) -> &'s str {
    source
        .get(node.keyword_span.start..node.keyword_span.end)
        .unwrap_or("")
}

fn self_consistent(word: &str) -> bool {
    word == word.to_lowercase() || word == word.to_uppercase()
}

/// Keywords must all be lower or all upper case: mixed-case ones and those against the majority
/// (upper case on a tie) are flagged.
fn instruction_casing(input: &Input<'_>) -> Vec<Hit> {
    let words: Vec<(&str, &Node)> = input
        .ast
        .nodes
        .iter()
        .map(|n| (keyword(input.source, n), n))
        .collect();
    let consistent = words.iter().filter(|(w, _)| self_consistent(w));
    let lower = consistent
        .clone()
        .filter(|(w, _)| *w == w.to_lowercase())
        .count();
    let majority_lower = lower > consistent.count() - lower;
    let (wanted, name) = if majority_lower {
        (true, "lowercase")
    } else {
        (false, "uppercase")
    };
    words
        .into_iter()
        .filter(|(w, _)| {
            let cased = if wanted {
                w.to_lowercase()
            } else {
                w.to_uppercase()
            };
            *w != cased
        })
        .map(|(w, node)| {
            let msg =
                format!("Command '{w}' should match the case of the command majority ({name})");
            Hit::new(rules::CONSISTENT_INSTRUCTION_CASING, msg, node.span)
        })
        .collect()
}

/// StageNameCasing, FromAsCasing, ReservedStageName and DuplicateStageName on each FROM.
fn stage_names(input: &Input<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    let mut seen = BTreeSet::new();
    for (node, command) in input.ast.nodes.iter().zip(&input.commands) {
        let Instruction::From(from) = &command.instruction else {
            continue;
        };
        let Some(name) = &from.name else { continue };
        let written = input
            .source
            .get(name.span.start..name.span.end)
            .unwrap_or(&name.value);
        if written != written.to_lowercase() {
            let msg = format!("Stage name '{written}' should be lowercase");
            hits.push(Hit::new(rules::STAGE_NAME_CASING, msg, command.span));
        }
        hits.extend(from_as_casing(input.source, node, command.span));
        if matches!(name.value.as_str(), "scratch" | "context") {
            let msg = format!(
                "Stage name should not use the same name as reserved stage {}",
                go_quote(&name.value)
            );
            hits.push(Hit::new(rules::RESERVED_STAGE_NAME, msg, command.span));
        }
        if !seen.insert(name.value.clone()) {
            let msg = format!(
                "Duplicate stage name {}, stage names should be unique",
                go_quote(&name.value)
            );
            hits.push(Hit::new(rules::DUPLICATE_STAGE_NAME, msg, command.span));
        }
    }
    hits
}

/// `FROM x as y`: the `AS` must follow FROM's casing (unless FROM itself is mixed-case, which
/// ConsistentInstructionCasing reports).
fn from_as_casing(source: &str, node: &Node, span: Span) -> Option<Hit> {
    let from = keyword(source, node);
    let as_word = node.args.get(1)?.value.as_str();
    let (lower, upper) = (from == from.to_lowercase(), from == from.to_uppercase());
    let matches = if lower {
        as_word == as_word.to_lowercase()
    } else {
        !upper || as_word == as_word.to_uppercase()
    };
    let msg = format!("'{as_word}' and '{from}' keywords' casing do not match");
    (!matches).then(|| Hit::new(rules::FROM_AS_CASING, msg, span))
}

/// Checks that look at one instruction alone; `in_stage` is false for the ARGs before the
/// first FROM, which BuildKit does not check for secrets.
fn per_command(command: &Command, in_stage: bool) -> Vec<Hit> {
    let span = command.span;
    match &command.instruction {
        Instruction::Maintainer(_) => {
            let msg = "Maintainer instruction is deprecated in favor of using label".into();
            vec![Hit::new(rules::MAINTAINER_DEPRECATED, msg, span)]
        }
        Instruction::Env(kv) | Instruction::Label(kv) => {
            let name = command.instruction.name();
            let mut hits: Vec<Hit> = Vec::new();
            if kv.pairs.iter().any(|p| p.legacy) {
                let msg = format!(
                    "\"{name} key=value\" should be used instead of legacy \"{name} key value\" format"
                );
                hits.push(Hit::new(rules::LEGACY_KEY_VALUE_FORMAT, msg, span));
            }
            if matches!(command.instruction, Instruction::Env(_)) {
                hits.extend(
                    kv.pairs
                        .iter()
                        .filter_map(|p| secret("ENV", &p.key.value, span)),
                );
            }
            hits
        }
        Instruction::Arg(arg) if in_stage => arg
            .args
            .iter()
            .filter_map(|a| secret("ARG", &a.name.value, span))
            .collect(),
        Instruction::Copy(copy) => copy
            .from
            .iter()
            .filter(|f| f.value.contains('$'))
            .map(|f| variable_from(&format!("COPY --from={}", f.value), f.span))
            .collect(),
        Instruction::Run(run) => run
            .mounts
            .iter()
            .filter_map(|m| mount_from(&m.text).map(|from| (from, m.span)))
            .map(|(from, span)| variable_from(&format!("RUN --mount from={from}"), span))
            .collect(),
        _ => Vec::new(),
    }
}

/// The `from=` value of a `--mount` when it uses a variable.
fn mount_from(text: &str) -> Option<&str> {
    text.split(',')
        .filter_map(|field| field.split_once('='))
        .find(|(key, _)| key.trim().eq_ignore_ascii_case("from"))
        .map(|(_, value)| value)
        .filter(|value| value.contains('$'))
}

/// FromVariableNotPortable: kiln expands the variable, BuildKit takes it literally.
fn variable_from(what: &str, span: Span) -> Hit {
    let msg = format!(
        "{what} uses a variable: kiln expands it but BuildKit does not (moby/moby#34482), so docker build reads it literally"
    );
    Hit::new(rules::FROM_VARIABLE_NOT_PORTABLE, msg, span)
}

/// SecretsUsedInArgOrEnv: an `_`-separated part of the name is a secret word and none is an
/// allowed one (BuildKit's two regular expressions).
fn secret(instruction: &str, key: &str, span: Span) -> Option<Hit> {
    const DENY: &[&str] = &[
        "apikey",
        "auth",
        "credential",
        "credentials",
        "key",
        "password",
        "pword",
        "passwd",
        "secret",
        "token",
    ];
    const ALLOW: &[&str] = &["public", "file", "version"];
    let has = |words: &[&str]| {
        key.split('_')
            .any(|p| words.iter().any(|w| p.eq_ignore_ascii_case(w)))
    };
    (has(DENY) && !has(ALLOW)).then(|| {
        let msg = format!(
            "Do not use ARG or ENV instructions for sensitive data ({instruction} {})",
            go_quote(key)
        );
        Hit::new(rules::SECRETS_USED_IN_ARG_OR_ENV, msg, span)
    })
}

/// A stage's commands, with the stage it is built on (for what `FROM <stage>` inherits).
struct RawStage<'a> {
    commands: &'a [Command],
    /// A SHELL instruction ran in the stages this one builds on.
    inherited_shell: bool,
    /// A SHELL instruction ran here or in the stages this one builds on.
    shell_set: bool,
}

fn split_stages(commands: &[Command]) -> Vec<RawStage<'_>> {
    let starts: Vec<usize> = commands
        .iter()
        .enumerate()
        .filter(|(_, c)| matches!(c.instruction, Instruction::From(_)))
        .map(|(i, _)| i)
        .collect();
    let mut stages: Vec<(Option<String>, RawStage<'_>)> = Vec::new();
    for (k, &start) in starts.iter().enumerate() {
        let end = starts.get(k + 1).copied().unwrap_or(commands.len());
        let Some(slice) = commands.get(start..end) else {
            continue;
        };
        let Some(Instruction::From(from)) = slice.first().map(|c| &c.instruction) else {
            continue;
        };
        let parent = stages.iter().rev().find(|(name, _)| {
            name.as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(&from.image.value))
        });
        let own_shell = slice
            .iter()
            .any(|c| matches!(c.instruction, Instruction::Shell(_)));
        let inherited_shell = parent.is_some_and(|(_, p)| p.shell_set);
        let shell_set = own_shell || inherited_shell;
        let name = from.name.as_ref().map(|n| n.value.clone());
        stages.push((
            name,
            RawStage {
                commands: slice,
                inherited_shell,
                shell_set,
            },
        ));
    }
    stages.into_iter().map(|(_, s)| s).collect()
}

impl RawStage<'_> {
    fn checks(&self) -> Vec<Hit> {
        let mut hits = Vec::new();
        let mut last: [Option<Span>; 3] = [None; 3];
        let mut shell = self.inherited_shell;
        for command in self.commands {
            let slot = match &command.instruction {
                Instruction::Cmd(_) => Some(0),
                Instruction::Entrypoint(_) => Some(1),
                Instruction::Healthcheck(_) => Some(2),
                Instruction::Shell(_) => {
                    shell = true;
                    None
                }
                _ => None,
            };
            hits.extend(json_args(command, shell));
            let Some(slot) = slot else { continue };
            if let Some(previous) = last.get_mut(slot).and_then(|s| s.replace(command.span)) {
                let name = command.instruction.name();
                let msg = format!(
                    "Multiple {name} instructions should not be used in the same stage because only the last one will be used"
                );
                hits.push(Hit::new(
                    rules::MULTIPLE_INSTRUCTIONS_DISALLOWED,
                    msg,
                    previous,
                ));
            }
        }
        hits
    }
}

/// Shell-form CMD/ENTRYPOINT while no SHELL was chosen (in the stage so far, or in the stages
/// it builds on).
fn json_args(command: &Command, shell_set: bool) -> Option<Hit> {
    let line = match &command.instruction {
        Instruction::Cmd(c) | Instruction::Entrypoint(c) => c,
        _ => return None,
    };
    if line.form != Form::Shell || shell_set {
        return None;
    }
    let name = command.instruction.name();
    let msg = format!(
        "JSON arguments recommended for {name} to prevent unintended behavior related to OS signals"
    );
    Some(Hit::new(rules::JSON_ARGS_RECOMMENDED, msg, command.span))
}
