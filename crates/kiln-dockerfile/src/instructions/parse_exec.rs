//! RUN, CMD/ENTRYPOINT, HEALTHCHECK and SHELL: the instructions that carry a command line.

use std::time::Duration;

use crate::ast::{Node, Span, Word};
use crate::{Error, Result};

use super::duration::parse_go_duration;
use super::flags::{self, Flags, Kind};
use super::mount::Mount;
use super::types::*;
use super::{args_error, spanned};

/// Exec form keeps one argument per JSON element; shell form is the whole line as one argument.
fn command_line(node: &Node, words: &[Word]) -> CommandLine {
    let form = if node.json { Form::Exec } else { Form::Shell };
    let args = match (&form, words.first(), words.last()) {
        (Form::Shell, Some(first), Some(last)) => {
            let line = words
                .iter()
                .map(|w| w.value.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            vec![Spanned::new(
                line,
                Span {
                    start: first.span.start,
                    end: last.span.end,
                },
            )]
        }
        _ => words.iter().map(spanned).collect(),
    };
    CommandLine {
        form,
        args,
        heredocs: node.heredocs.clone(),
    }
}

pub fn run(node: &Node) -> Result<Run> {
    let spec = [
        ("mount", Kind::Strings),
        ("network", Kind::String),
        ("security", Kind::String),
    ];
    let flags = flags::parse(&node.flags, &spec)?;
    let mounts = flags
        .strings("mount")
        .into_iter()
        .map(unexpanded_mount)
        .collect::<Result<_>>()?;
    Ok(Run {
        command: command_line(node, &node.args),
        mounts,
        network: network(&flags)?,
        security: security(&flags)?,
    })
}

/// Parses a mount now when it has no variables; otherwise the stages layer does after expansion.
fn unexpanded_mount(flag: Spanned<String>) -> Result<Typed<Mount>> {
    let value = if flag.value.contains('$') {
        None
    } else {
        Some(mount_at(
            &flag.value,
            flag.span,
            &mut |_: &str, v: &str| Ok(v.to_owned()),
        )?)
    };
    Ok(Typed {
        text: flag.value,
        span: flag.span,
        value,
    })
}

/// Parses a mount flag value whose text starts at `span.start`, mapping errors to the field.
pub(crate) fn mount_at(
    text: &str,
    span: Span,
    expand: &mut dyn FnMut(&str, &str) -> std::result::Result<String, String>,
) -> Result<Mount> {
    Mount::parse(text, expand).map_err(|e| {
        let start = (span.start + e.start).min(span.end);
        Error::new(
            e.message,
            Span {
                start,
                end: (span.start + e.end).clamp(start, span.end),
            },
        )
    })
}

fn network(flags: &Flags) -> Result<Option<Spanned<NetworkMode>>> {
    let Some(v) = flags.string("network") else {
        return Ok(None);
    };
    let mode = match v.value.as_str() {
        "default" => NetworkMode::Default,
        "none" => NetworkMode::None,
        "host" => NetworkMode::Host,
        other => {
            return Err(Error::new(
                format!("invalid network mode {other:?}"),
                v.span,
            ));
        }
    };
    Ok(Some(Spanned::new(mode, v.span)))
}

fn security(flags: &Flags) -> Result<Option<Spanned<SecurityMode>>> {
    let Some(v) = flags.string("security") else {
        return Ok(None);
    };
    let mode = match v.value.as_str() {
        "sandbox" => SecurityMode::Sandbox,
        "insecure" => SecurityMode::Insecure,
        other => {
            return Err(Error::new(
                format!("security {other:?} is not valid"),
                v.span,
            ));
        }
    };
    Ok(Some(Spanned::new(mode, v.span)))
}

/// CMD and ENTRYPOINT.
pub fn cmd(node: &Node) -> Result<CommandLine> {
    flags::parse(&node.flags, &[])?;
    Ok(command_line(node, &node.args))
}

pub fn shell(node: &Node) -> Result<Shell> {
    flags::parse(&node.flags, &[])?;
    if node.args.is_empty() {
        return Err(args_error(node, "SHELL requires at least one argument"));
    }
    if !node.json {
        return Err(args_error(
            node,
            "SHELL requires the arguments to be in JSON form",
        ));
    }
    Ok(Shell {
        shell: node.args.iter().map(spanned).collect(),
    })
}

const HEALTH_FLAGS: [(&str, Kind); 5] = [
    ("interval", Kind::String),
    ("timeout", Kind::String),
    ("start-period", Kind::String),
    ("start-interval", Kind::String),
    ("retries", Kind::String),
];

pub fn healthcheck(node: &Node) -> Result<Healthcheck> {
    let Some(kind) = node.args.first() else {
        return Err(args_error(
            node,
            "HEALTHCHECK requires at least one argument",
        ));
    };
    let rest = &node.args[1..];
    let typ = kind.value.to_ascii_uppercase();
    if typ == "NONE" {
        // BuildKit never parses the flags of HEALTHCHECK NONE.
        if let Some(extra) = rest.first() {
            return Err(Error::new(
                "HEALTHCHECK NONE takes no arguments",
                extra.span,
            ));
        }
        return Ok(none_check());
    }
    let flags = flags::parse(&node.flags, &HEALTH_FLAGS)?;
    if typ != "CMD" {
        return Err(Error::new(
            format!("Unknown type {typ:?} in HEALTHCHECK (try CMD)"),
            kind.span,
        ));
    }
    let command = command_line(node, rest);
    if command.args.is_empty() {
        return Err(Error::new(
            "Missing command after HEALTHCHECK CMD",
            kind.span,
        ));
    }
    Ok(Healthcheck {
        test: HealthTest::Cmd(command),
        interval: interval(&flags, "interval")?,
        timeout: interval(&flags, "timeout")?,
        start_period: interval(&flags, "start-period")?,
        start_interval: interval(&flags, "start-interval")?,
        retries: retries(&flags)?,
    })
}

fn none_check() -> Healthcheck {
    Healthcheck {
        test: HealthTest::None,
        interval: Duration::ZERO,
        timeout: Duration::ZERO,
        start_period: Duration::ZERO,
        start_interval: Duration::ZERO,
        retries: 0,
    }
}

/// A duration option: zero when unset, at least 1ms otherwise.
fn interval(flags: &Flags, name: &str) -> Result<Duration> {
    let Some(v) = flags.string(name) else {
        return Ok(Duration::ZERO);
    };
    if v.value.is_empty() {
        return Ok(Duration::ZERO);
    }
    let nanos = parse_go_duration(&v.value).map_err(|m| Error::new(m, v.span))?;
    if nanos == 0 {
        return Ok(Duration::ZERO);
    }
    if nanos < 1_000_000 {
        return Err(Error::new(
            format!("Interval {name:?} cannot be less than 1ms"),
            v.span,
        ));
    }
    let nanos = u64::try_from(nanos).unwrap_or(u64::MAX);
    Ok(Duration::from_nanos(nanos))
}

fn retries(flags: &Flags) -> Result<u32> {
    let Some(v) = flags.string("retries") else {
        return Ok(0);
    };
    if v.value.is_empty() {
        return Ok(0);
    }
    let n = parse_int32(&v.value).map_err(|m| Error::new(m, v.span))?;
    u32::try_from(n).map_err(|_| Error::new(format!("--retries cannot be negative ({n})"), v.span))
}

/// Go's `strconv.ParseInt(s, 10, 32)` with its messages.
fn parse_int32(s: &str) -> std::result::Result<i64, String> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("strconv.ParseInt: parsing {s:?}: invalid syntax"));
    }
    s.parse::<i64>()
        .ok()
        .filter(|n| i32::try_from(*n).is_ok())
        .ok_or_else(|| format!("strconv.ParseInt: parsing {s:?}: value out of range"))
}
