//! Stage names and references: name rules, `FROM <stage>`, `COPY --from` and `mount from=`.

use std::collections::BTreeSet;

use crate::ast::Span;
use crate::instructions::{Instruction, Source};
use crate::{Error, Result};

use super::{Base, RawStage};

/// Rejects reserved stage names (`scratch`, `context`) and duplicates (pointing at the second).
pub fn check_names(raw: &[RawStage]) -> Result<()> {
    let mut seen = BTreeSet::new();
    for (from, _) in raw {
        let Instruction::From(f) = &from.instruction else {
            continue;
        };
        let Some(name) = &f.name else { continue };
        if matches!(name.value.as_str(), "scratch" | "context") {
            return Err(Error::new(
                format!("stage name {:?} is reserved", name.value),
                name.span,
            ));
        }
        if !seen.insert(name.value.clone()) {
            let msg = format!(
                "duplicate stage name {:?}, stage names should be unique",
                name.value
            );
            return Err(Error::new(msg, name.span));
        }
    }
    Ok(())
}

/// Where `FROM image` builds from: an earlier stage by name (case-insensitive), scratch, or an image.
pub fn base(image: &str, names: &[Option<String>], index: usize) -> Base {
    let earlier = names[..index.min(names.len())]
        .iter()
        .rposition(|n| n.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(image)));
    match earlier {
        Some(i) => Base::Stage(i),
        None if image == "scratch" => Base::Scratch,
        None => Base::Image(image.to_owned()),
    }
}

/// The stage name used in messages.
fn display(names: &[Option<String>], index: usize) -> String {
    names
        .get(index)
        .cloned()
        .flatten()
        .unwrap_or_else(|| format!("stage-{index}"))
}

/// `COPY --from=`: a stage index, a stage name, or else an image. Stages must come earlier.
pub fn copy_from(
    value: &str,
    span: Span,
    names: &[Option<String>],
    index: usize,
) -> Result<Source> {
    let stage = match go_atoi(value) {
        Some(n) => match usize::try_from(n).ok().filter(|i| *i < names.len()) {
            Some(i) => i,
            None => return Err(Error::new(format!("invalid stage index {n}"), span)),
        },
        None => match find(value, names) {
            Some(i) => i,
            None => return Ok(Source::Image(value.to_owned())),
        },
    };
    earlier(stage, index, names, span, || {
        format!(
            "cannot copy from stage {value:?}, it needs to be defined before current stage {:?}",
            display(names, index)
        )
    })
}

/// `RUN --mount=from=`: a stage name (indexes are not stage references here) or else an image.
pub fn mount_from(
    value: &str,
    span: Span,
    names: &[Option<String>],
    index: usize,
) -> Result<Source> {
    match find(value, names) {
        Some(stage) => earlier(stage, index, names, span, || {
            format!(
                "cannot mount from stage {value:?}, it needs to be defined before current stage {:?}",
                display(names, index)
            )
        }),
        None => Ok(Source::Image(value.to_owned())),
    }
}

fn find(name: &str, names: &[Option<String>]) -> Option<usize> {
    names
        .iter()
        .position(|n| n.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(name)))
}

fn earlier(
    stage: usize,
    index: usize,
    names: &[Option<String>],
    span: Span,
    later: impl FnOnce() -> String,
) -> Result<Source> {
    if stage == index {
        let msg = format!(
            "circular dependency detected on stage: {}",
            display(names, index)
        );
        return Err(Error::new(msg, span));
    }
    if stage > index {
        return Err(Error::new(later(), span));
    }
    Ok(Source::Stage(stage))
}

/// Go's `strconv.Atoi`: optional sign, decimal digits only.
fn go_atoi(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<Option<String>> {
        vec![Some("build".into()), None, Some("final".into())]
    }

    #[test]
    fn base_resolution() {
        assert_eq!(base("BUILD", &names(), 2), Base::Stage(0));
        assert_eq!(base("final", &names(), 2), Base::Image("final".into()));
        assert_eq!(base("scratch", &names(), 1), Base::Scratch);
    }

    #[test]
    fn copy_from_rules() {
        let s = Span::default();
        assert_eq!(copy_from("0", s, &names(), 2), Ok(Source::Stage(0)));
        assert_eq!(copy_from("Build", s, &names(), 1), Ok(Source::Stage(0)));
        assert_eq!(
            copy_from("alpine:3", s, &names(), 1),
            Ok(Source::Image("alpine:3".into()))
        );
        assert_eq!(
            copy_from("7", s, &names(), 1).unwrap_err().message,
            "invalid stage index 7"
        );
        assert_eq!(
            copy_from("-1", s, &names(), 1).unwrap_err().message,
            "invalid stage index -1"
        );
        assert_eq!(
            copy_from("1", s, &names(), 1).unwrap_err().message,
            "circular dependency detected on stage: stage-1"
        );
        assert_eq!(
            copy_from("final", s, &names(), 1).unwrap_err().message,
            "cannot copy from stage \"final\", it needs to be defined before current stage \"stage-1\""
        );
    }

    #[test]
    fn mount_from_treats_numbers_as_images() {
        assert_eq!(
            mount_from("0", Span::default(), &names(), 2),
            Ok(Source::Image("0".into()))
        );
        assert_eq!(
            mount_from("build", Span::default(), &names(), 2),
            Ok(Source::Stage(0))
        );
    }
}
