//! Instruction flags (`--name[=value]`), checked like BuildKit's `BFlags`: each instruction
//! declares the flags it accepts and anything else is an error pointing at the flag.

use crate::ast::{Flag, Span};
use crate::{Error, Result};

use super::suggest::did_you_mean;
use super::types::Spanned;

/// How a flag takes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `--link`, `--link=true|false`.
    Bool,
    /// `--from=x`, once.
    String,
    /// `--exclude=x`, repeatable.
    Strings,
}

/// One flag as given, with its value (bools are `"true"`/`"false"`).
#[derive(Debug, Clone)]
struct Given {
    name: &'static str,
    value: Spanned<String>,
    span: Span,
}

/// The flags of one instruction after validation.
#[derive(Debug, Default)]
pub struct Flags {
    given: Vec<Given>,
}

impl Flags {
    /// The value of a string flag, if given.
    pub fn string(&self, name: &str) -> Option<Spanned<String>> {
        self.given
            .iter()
            .find(|g| g.name == name)
            .map(|g| g.value.clone())
    }

    /// Every value of a repeatable flag, in order.
    pub fn strings(&self, name: &str) -> Vec<Spanned<String>> {
        self.given
            .iter()
            .filter(|g| g.name == name)
            .map(|g| g.value.clone())
            .collect()
    }

    /// A bool flag: `None` when absent.
    pub fn bool(&self, name: &str) -> Option<bool> {
        self.string(name).map(|v| v.value == "true")
    }

    /// The span of the whole flag (`--name=value`), if given.
    pub fn span(&self, name: &str) -> Option<Span> {
        self.given.iter().find(|g| g.name == name).map(|g| g.span)
    }
}

/// Checks `flags` against the accepted `spec` (name, kind), with BuildKit's messages.
pub fn parse(flags: &[Flag], spec: &[(&'static str, Kind)]) -> Result<Flags> {
    let mut out = Flags::default();
    for flag in flags {
        let given = parse_one(flag, spec, &out)?;
        out.given.push(given);
    }
    Ok(out)
}

fn parse_one(flag: &Flag, spec: &[(&'static str, Kind)], seen: &Flags) -> Result<Given> {
    let text = flag.text.as_str();
    let Some(body) = text.strip_prefix("--") else {
        return Err(Error::new(
            format!("arg should start with -- : {text}"),
            flag.span,
        ));
    };
    let (name, value) = match body.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (body, None),
    };
    let flag_name = &text[..2 + name.len()];
    let Some(&(known, kind)) = spec.iter().find(|(n, _)| *n == name) else {
        let msg = format!("unknown flag: {flag_name}");
        let names: Vec<&str> = spec.iter().map(|(n, _)| *n).collect();
        return Err(Error::new(did_you_mean(msg, name, &names), flag.span));
    };
    if kind != Kind::Strings && seen.span(known).is_some() {
        return Err(Error::new(
            format!("duplicate flag specified: {flag_name}"),
            flag.span,
        ));
    }
    let value = flag_value(flag, flag_name, kind, value)?;
    let value_start = flag.span.start + (text.len() - value_len(text, flag_name));
    let value_span = Span {
        start: value_start.min(flag.span.end),
        end: flag.span.end,
    };
    Ok(Given {
        name: known,
        value: Spanned::new(value, value_span),
        span: flag.span,
    })
}

/// Length of the value part of `--name=value` (0 without `=`).
fn value_len(text: &str, flag_name: &str) -> usize {
    text.len().saturating_sub(flag_name.len() + 1)
}

fn flag_value(flag: &Flag, flag_name: &str, kind: Kind, value: Option<&str>) -> Result<String> {
    let missing = || Error::new(format!("missing a value on flag: {flag_name}"), flag.span);
    match (kind, value) {
        (Kind::Bool, None) => Ok("true".to_owned()),
        (Kind::Bool, Some("")) => Err(missing()),
        (Kind::Bool, Some(v)) => match v.to_ascii_lowercase().as_str() {
            "true" => Ok("true".to_owned()),
            "false" => Ok("false".to_owned()),
            _ => Err(Error::new(
                format!("expecting boolean value for flag {flag_name}, not: {v}"),
                flag.span,
            )),
        },
        (Kind::String | Kind::Strings, None) => Err(missing()),
        (Kind::String | Kind::Strings, Some(v)) => Ok(v.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag(text: &str) -> Flag {
        Flag {
            text: text.to_owned(),
            span: Span {
                start: 10,
                end: 10 + text.len(),
            },
        }
    }

    const SPEC: &[(&str, Kind)] = &[
        ("from", Kind::String),
        ("link", Kind::Bool),
        ("exclude", Kind::Strings),
    ];

    #[test]
    fn values_and_value_spans() {
        let f = parse(&[flag("--from=build"), flag("--link")], SPEC).unwrap();
        let from = f.string("from").unwrap();
        assert_eq!(from.value, "build");
        assert_eq!(from.span, Span { start: 17, end: 22 });
        assert_eq!(f.bool("link"), Some(true));
        assert_eq!(f.bool("exclude"), None);
    }

    #[test]
    fn repeatable_flags_collect_in_order() {
        let f = parse(&[flag("--exclude=a"), flag("--exclude=b")], SPEC).unwrap();
        let values: Vec<String> = f.strings("exclude").into_iter().map(|v| v.value).collect();
        assert_eq!(values, ["a", "b"]);
    }

    #[test]
    fn errors_use_buildkit_wording() {
        let err = |f: &[Flag]| parse(f, SPEC).unwrap_err().message;
        assert_eq!(err(&[flag("--nope")]), "unknown flag: --nope");
        assert_eq!(
            err(&[flag("--from=a"), flag("--from=b")]),
            "duplicate flag specified: --from"
        );
        assert_eq!(err(&[flag("--from")]), "missing a value on flag: --from");
        assert_eq!(err(&[flag("--link=")]), "missing a value on flag: --link");
        assert_eq!(
            err(&[flag("--link=yes")]),
            "expecting boolean value for flag --link, not: yes"
        );
        assert_eq!(err(&[flag("-x")]), "arg should start with -- : -x");
    }

    #[test]
    fn unknown_flag_close_to_a_known_one_gets_a_suggestion() {
        let e = parse(&[flag("--form=x")], SPEC).unwrap_err();
        assert_eq!(e.message, "unknown flag: --form (did you mean from?)");
        assert_eq!(e.span, Span { start: 10, end: 18 });
    }

    #[test]
    fn bool_accepts_any_case() {
        let f = parse(&[flag("--link=FALSE")], SPEC).unwrap();
        assert_eq!(f.bool("link"), Some(false));
    }
}
