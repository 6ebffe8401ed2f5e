//! Parser directives (`# syntax=`, `# escape=`, `# check=`) read from the top of the file.

use super::lines::RawLine;
use crate::ast::{Directives, Span};
use crate::{Error, Result};

/// Whitespace as Go's regexp `\s` sees it (ASCII only, no vertical tab).
fn is_re_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0c' | '\r')
}

/// State of directive scanning: directives are only honoured before the first other line.
#[derive(Debug)]
pub(super) struct DirectiveScanner {
    pub directives: Directives,
    done: bool,
    seen: Vec<&'static str>,
}

/// A `# name=value` line: lower-cased name and the value's position in the line text.
struct Candidate<'a> {
    name: String,
    value: &'a str,
    value_start: usize,
}

impl DirectiveScanner {
    pub fn new() -> Self {
        let directives = Directives {
            syntax: None,
            escape: '\\',
            check: None,
        };
        Self {
            directives,
            done: false,
            seen: Vec::new(),
        }
    }

    pub fn escape(&self) -> char {
        self.directives.escape
    }

    /// Looks at one line (already stripped of leading blanks, starting at `offset` in the
    /// line's text); the first line that is not a known directive ends the directive block.
    /// Returns whether the line was a directive.
    pub fn scan(&mut self, line: &RawLine<'_>, text: &str, offset: usize) -> Result<bool> {
        if self.done {
            return Ok(false);
        }
        let Some(candidate) = match_directive(text) else {
            self.done = true;
            return Ok(false);
        };
        let key = match candidate.name.as_str() {
            "syntax" => "syntax",
            "escape" => "escape",
            "check" => "check",
            _ => {
                self.done = true;
                return Ok(false);
            }
        };
        let start = line.start + offset + candidate.value_start;
        let span = Span {
            start,
            end: start + candidate.value.len(),
        };
        if self.seen.contains(&key) {
            return Err(Error::new(
                format!("only one {key} parser directive can be used"),
                span,
            ));
        }
        self.seen.push(key);
        self.apply(key, candidate.value, span).map(|()| true)
    }

    fn apply(&mut self, key: &str, value: &str, span: Span) -> Result<()> {
        match key {
            "escape" => {
                self.directives.escape = match value {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        let msg = format!("invalid escape token '{value}' does not match ` or \\");
                        return Err(Error::new(msg, span));
                    }
                }
            }
            "syntax" => self.directives.syntax = Some(value.to_owned()),
            _ => self.directives.check = Some(value.to_owned()),
        }
        Ok(())
    }
}

/// Matches `#\s*NAME\s*=\s*(VALUE)\s*$` with Go regexp semantics (lazy value, so a
/// whitespace-only value is its last blank).
fn match_directive(text: &str) -> Option<Candidate<'_>> {
    let after_hash = text.strip_prefix('#')?;
    let body = after_hash.trim_start();
    let name_len = body
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
        .map_or(body.len(), |(i, _)| i);
    if name_len == 0 {
        return None;
    }
    let (name, rest) = body.split_at(name_len);
    let rest = rest.trim_start_matches(is_re_space).strip_prefix('=')?;
    let value_area = rest.trim_start_matches(is_re_space);
    let (value, value_rel) = if value_area.is_empty() {
        let last = rest.len() - rest.chars().next_back()?.len_utf8();
        (rest.get(last..)?, last)
    } else {
        (
            value_area.trim_end_matches(is_re_space),
            rest.len() - value_area.len(),
        )
    };
    let rest_start = text.len() - rest.len();
    Some(Candidate {
        name: name.to_ascii_lowercase(),
        value,
        value_start: rest_start + value_rel,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str) -> Option<(String, String)> {
        match_directive(text).map(|c| (c.name, c.value.to_owned()))
    }

    #[test]
    fn directive_forms() {
        assert_eq!(value("# escape = `"), Some(("escape".into(), "`".into())));
        assert_eq!(
            value("#SYNTAX=a b  "),
            Some(("syntax".into(), "a b".into()))
        );
        assert_eq!(value("# escape=  "), Some(("escape".into(), " ".into())));
        assert_eq!(value("# escape="), None);
        assert_eq!(value("# 1abc=x"), None);
        assert_eq!(value("# comment"), None);
    }

    #[test]
    fn value_offset_points_into_text() {
        let text = "#  check = skip=all ";
        let c = match_directive(text).unwrap();
        assert_eq!(
            &text[c.value_start..c.value_start + c.value.len()],
            "skip=all"
        );
    }
}
