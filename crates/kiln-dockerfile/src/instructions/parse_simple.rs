//! FROM, ENV, LABEL, ARG, WORKDIR, USER, EXPOSE, VOLUME, STOPSIGNAL, MAINTAINER and ONBUILD.

use crate::ast::{Node, Span, Word};
use crate::{Error, Result};

use super::flags::{self, Kind};
use super::types::*;
use super::{args_error, at_least_one, exactly_one, spanned};

/// Checks that the node has no flags (BuildKit's empty `BFlags`).
fn no_flags(node: &Node) -> Result<()> {
    flags::parse(&node.flags, &[]).map(drop)
}

pub fn from(node: &Node) -> Result<From> {
    let name = stage_name(node)?;
    let flags = flags::parse(&node.flags, &[("platform", Kind::String)])?;
    Ok(From {
        image: spanned(&node.args[0]),
        name,
        platform: flags.string("platform"),
    })
}

/// `image`, or `image AS name` with a valid name (lower-cased).
fn stage_name(node: &Node) -> Result<Option<Spanned<String>>> {
    match node.args.as_slice() {
        [_] => Ok(None),
        [_, as_word, name] if as_word.value.eq_ignore_ascii_case("as") => {
            let lower = name.value.to_lowercase();
            if !valid_stage_name(&lower) {
                let msg = format!(
                    "invalid name for build stage: {:?}, name can't start with a number or contain symbols",
                    name.value
                );
                return Err(Error::new(msg, name.span));
            }
            Ok(Some(Spanned::new(lower, name.span)))
        }
        _ => Err(args_error(
            node,
            "FROM requires either one or three arguments",
        )),
    }
}

/// BuildKit's `^[a-z][a-z0-9-_.]*$`.
fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
}

/// ENV or LABEL: the parser gives `(key, value, "=" | "")` triples.
pub fn key_values(node: &Node, name: &str) -> Result<KeyValues> {
    no_flags(node)?;
    if node.args.is_empty() {
        return Err(args_error(
            node,
            format!("{name} requires at least one argument"),
        ));
    }
    if node.args.len() % 3 != 0 {
        return Err(args_error(
            node,
            format!("Bad input to {name}, too many arguments"),
        ));
    }
    let pairs = node
        .args
        .chunks(3)
        .map(|t| key_value(t, name))
        .collect::<Result<_>>()?;
    Ok(KeyValues { pairs })
}

fn key_value(triple: &[Word], name: &str) -> Result<KeyValue> {
    let [key, value, delim] = triple else {
        return Err(Error::new(
            format!("Bad input to {name}, too many arguments"),
            Span::default(),
        ));
    };
    if key.value.is_empty() {
        return Err(Error::new(
            format!("{name} names can not be blank"),
            key.span,
        ));
    }
    Ok(KeyValue {
        key: spanned(key),
        value: spanned(value),
        legacy: delim.value.is_empty(),
    })
}

/// `ARG a b=c`: BuildKit ignores flags on ARG, so they are not checked.
pub fn arg(node: &Node) -> Result<Arg> {
    at_least_one(node, "ARG")?;
    let args = node.args.iter().map(arg_decl).collect::<Result<_>>()?;
    Ok(Arg { args })
}

fn arg_decl(word: &Word) -> Result<ArgDecl> {
    let Some((name, default)) = word.value.split_once('=') else {
        return Ok(ArgDecl {
            name: spanned(word),
            default: None,
            value: None,
        });
    };
    if name.is_empty() {
        return Err(Error::new("ARG names can not be blank", word.span));
    }
    let split = (word.span.start + name.len() + 1).min(word.span.end);
    Ok(ArgDecl {
        name: Spanned::new(
            name.to_owned(),
            Span {
                start: word.span.start,
                end: split.saturating_sub(1),
            },
        ),
        default: Some(Spanned::new(
            default.to_owned(),
            Span {
                start: split,
                end: word.span.end,
            },
        )),
        value: None,
    })
}

pub fn workdir(node: &Node) -> Result<Workdir> {
    let path = exactly_one(node, "WORKDIR")?;
    no_flags(node)?;
    Ok(Workdir { path })
}

pub fn user(node: &Node) -> Result<User> {
    let user = exactly_one(node, "USER")?;
    no_flags(node)?;
    Ok(User { user })
}

pub fn expose(node: &Node) -> Result<Expose> {
    at_least_one(node, "EXPOSE")?;
    no_flags(node)?;
    let mut ports: Vec<Spanned<String>> = node.args.iter().map(spanned).collect();
    ports.sort_by(|a, b| a.value.cmp(&b.value));
    Ok(Expose { ports })
}

pub fn volume(node: &Node) -> Result<Volume> {
    at_least_one(node, "VOLUME")?;
    no_flags(node)?;
    let paths = node.args.iter().map(volume_path).collect::<Result<_>>()?;
    Ok(Volume { paths })
}

fn volume_path(word: &Word) -> Result<Spanned<String>> {
    let trimmed = word.value.trim();
    if trimmed.is_empty() {
        return Err(Error::new(
            "VOLUME specified can not be an empty string",
            word.span,
        ));
    }
    Ok(Spanned::new(trimmed.to_owned(), word.span))
}

/// BuildKit ignores flags on STOPSIGNAL, so they are not checked.
pub fn stopsignal(node: &Node) -> Result<StopSignal> {
    Ok(StopSignal {
        signal: exactly_one(node, "STOPSIGNAL")?,
    })
}

pub fn maintainer(node: &Node) -> Result<Maintainer> {
    let name = exactly_one(node, "MAINTAINER")?;
    no_flags(node)?;
    Ok(Maintainer { name })
}

pub fn onbuild(node: &Node, source: &str) -> Result<Onbuild> {
    let Some(trigger) = node.next.as_deref() else {
        return Err(args_error(node, "ONBUILD requires at least one argument"));
    };
    no_flags(node)?;
    match trigger.keyword.as_str() {
        "onbuild" => {
            return Err(Error::new(
                "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
                trigger.keyword_span,
            ));
        }
        "maintainer" | "from" => {
            let msg = format!(
                "{} isn't allowed as an ONBUILD trigger",
                trigger.keyword.to_ascii_uppercase()
            );
            return Err(Error::new(msg, trigger.keyword_span));
        }
        _ => {}
    }
    // The parser may attach the trigger's heredoc bodies to the ONBUILD node itself.
    let mut trigger_node = trigger.clone();
    if trigger_node.heredocs.is_empty() {
        trigger_node.heredocs.clone_from(&node.heredocs);
    }
    let command = super::parse(&trigger_node, source)?;
    Ok(Onbuild {
        expression: onbuild_expression(node, trigger),
        trigger: Box::new(command),
    })
}

/// The trigger's text as stored in the image config: the line without `ONBUILD`, then heredocs.
fn onbuild_expression(node: &Node, trigger: &Node) -> String {
    let line = node.original.trim_start();
    let rest = match line.get(..7) {
        Some(word) if word.eq_ignore_ascii_case("onbuild") => line[7..].trim_start(),
        _ => line,
    };
    let heredocs = if node.heredocs.is_empty() {
        &trigger.heredocs
    } else {
        &node.heredocs
    };
    heredocs.iter().fold(rest.to_owned(), |acc, h| {
        format!("{acc}\n{}{}", h.content, h.name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_name_rule() {
        for ok in ["a", "build", "my-stage_1.2"] {
            assert!(valid_stage_name(ok), "{ok}");
        }
        for bad in ["", "1st", "-a", "a/b", "a b", "é"] {
            assert!(!valid_stage_name(bad), "{bad}");
        }
    }
}
