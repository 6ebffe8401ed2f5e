//! Physical lines of the source, the way BuildKit's line scanner hands them out.

use crate::ast::Span;
use crate::{Error, Result};

/// BuildKit scans with a 64 KiB buffer: a line longer than this (without its newline) fails.
pub(super) const MAX_LINE_LEN: usize = 64 * 1024 - 1;

/// One physical line: `text` has its trailing `\r`/`\n` run removed, `raw` keeps it.
#[derive(Debug, Clone, Copy)]
pub(super) struct RawLine<'s> {
    /// Byte offset of `text` (and `raw`) in the source.
    pub start: usize,
    pub text: &'s str,
    pub raw: &'s str,
    /// 1-based line number.
    pub number: usize,
}

impl RawLine<'_> {
    /// Span of the line's text, without the newline.
    pub fn span(&self) -> Span {
        Span {
            start: self.start,
            end: self.start + self.text.len(),
        }
    }
}

/// Iterator over physical lines; the first line loses its UTF-8 byte-order mark.
#[derive(Debug)]
pub(super) struct Lines<'s> {
    source: &'s str,
    pos: usize,
    number: usize,
}

impl<'s> Lines<'s> {
    pub fn new(source: &'s str) -> Self {
        let pos = if source.starts_with('\u{feff}') {
            '\u{feff}'.len_utf8()
        } else {
            0
        };
        Self {
            source,
            pos,
            number: 0,
        }
    }

    /// The next line, or an error when it exceeds BuildKit's line-length limit.
    pub fn next_line(&mut self) -> Result<Option<RawLine<'s>>> {
        let rest = self.source.get(self.pos..).unwrap_or("");
        if rest.is_empty() {
            return Ok(None);
        }
        let raw_len = rest.find('\n').map_or(rest.len(), |i| i + 1);
        let raw = rest.get(..raw_len).unwrap_or(rest);
        let text = raw.trim_end_matches(['\r', '\n']);
        let line = RawLine {
            start: self.pos,
            text,
            raw,
            number: self.number + 1,
        };
        if raw.strip_suffix('\n').unwrap_or(raw).len() > MAX_LINE_LEN {
            let span = Span {
                start: self.pos,
                end: self.pos + raw.len(),
            };
            return Err(Error::new(
                format!("dockerfile line greater than max allowed size of {MAX_LINE_LEN}"),
                span,
            ));
        }
        self.pos += raw_len;
        self.number += 1;
        Ok(Some(line))
    }

    /// Byte offset of the end of the source (for errors at end of file).
    pub fn source_len(&self) -> usize {
        self.source.len()
    }
}

/// True for a line whose first non-blank character is `#`.
pub(super) fn is_comment(text: &str) -> bool {
    text.trim_start().starts_with('#')
}

/// Removes a trailing line-continuation escape (plus trailing blanks), as BuildKit's
/// `([^E])E[ \t]*$|^E[ \t]*$` regex does: a doubled escape at the end does not continue.
pub(super) fn trim_continuation(text: &str, escape: char) -> (&str, bool) {
    let trimmed = text.trim_end_matches([' ', '\t']);
    let Some(before) = trimmed.strip_suffix(escape) else {
        return (text, false);
    };
    if before.is_empty() || !before.ends_with(escape) {
        (before, true)
    } else {
        (text, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_rules() {
        assert_eq!(trim_continuation("a \\  \t", '\\'), ("a ", true));
        assert_eq!(trim_continuation("\\", '\\'), ("", true));
        assert_eq!(trim_continuation("a\\\\", '\\'), ("a\\\\", false));
        assert_eq!(trim_continuation("a`", '`'), ("a", true));
        assert_eq!(trim_continuation("a\\", '`'), ("a\\", false));
    }

    #[test]
    fn lines_strip_bom_and_newlines() {
        let mut lines = Lines::new("\u{feff}A\r\nB");
        let a = lines.next_line().unwrap().unwrap();
        assert_eq!((a.text, a.start, a.number), ("A", 3, 1));
        let b = lines.next_line().unwrap().unwrap();
        assert_eq!((b.text, b.number), ("B", 2));
        assert!(lines.next_line().unwrap().is_none());
    }
}
