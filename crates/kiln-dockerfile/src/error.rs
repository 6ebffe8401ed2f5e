//! Errors that point at the Dockerfile source: every front-end error carries a byte span, and
//! [`Error::render`] prints BuildKit-like `Dockerfile:LINE:COL` text with the line and a caret.

use crate::ast::Span;

/// A front-end error (parse, instruction validation, expansion, stage semantics).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub message: String,
    pub span: Span,
}

impl Error {
    pub fn new(message: impl Into<String>, span: Span) -> Self {
        Self {
            message: message.into(),
            span,
        }
    }

    /// 1-based line and column (in characters) of the span's start.
    pub fn line_col(&self, source: &str) -> (usize, usize) {
        line_col(source, self.span.start)
    }

    /// `file:line:col: message`, then the source line and a caret under the span.
    pub fn render(&self, file: &str, source: &str) -> String {
        let (line, col) = self.line_col(source);
        let text = source.lines().nth(line - 1).unwrap_or("");
        let width = source
            .get(self.span.start..self.span.end.min(line_end(source, self.span.start)))
            .map_or(1, |s| s.chars().count().max(1));
        format!(
            "{file}:{line}:{col}: {msg}\n{line:>5} | {text}\n      | {pad}{carets}",
            msg = self.message,
            pad = " ".repeat(col - 1),
            carets = "^".repeat(width),
        )
    }
}

/// 1-based (line, column) of a byte offset; offsets past the end clamp to the end.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Byte offset of the end of the line holding `offset` (any offset, even inside a character).
fn line_end(source: &str, offset: usize) -> usize {
    let from = offset.min(source.len());
    source
        .as_bytes()
        .get(from..)
        .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
        .map_or(source.len(), |i| from + i)
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_line_col_and_caret() {
        let src = "FROM busybox\nRUN  --bogus echo\n";
        let start = src.find("--bogus").unwrap();
        let err = Error::new(
            "unknown flag: --bogus",
            Span {
                start,
                end: start + 7,
            },
        );
        assert_eq!(err.line_col(src), (2, 6));
        let text = err.render("Dockerfile", src);
        assert!(
            text.starts_with("Dockerfile:2:6: unknown flag: --bogus\n"),
            "{text}"
        );
        assert!(text.ends_with("|      ^^^^^^^"), "{text}");
    }

    #[test]
    fn render_survives_offsets_inside_a_character() {
        let src = "RUN é\n";
        let err = Error::new("x", Span { start: 5, end: 6 });
        assert!(
            err.render("Dockerfile", src)
                .starts_with("Dockerfile:1:5: x")
        );
    }

    #[test]
    fn line_col_clamps_past_end() {
        assert_eq!(line_col("ab\nc", 99), (2, 2));
    }
}
