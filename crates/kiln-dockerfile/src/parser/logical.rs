//! A logical line (continuation lines joined) that remembers where each piece came from, so
//! offsets in the joined text map back to byte spans in the source.

use crate::ast::Span;

#[derive(Debug, Clone)]
pub(super) struct Logical {
    pub text: String,
    /// `(offset in text, offset in source)` of each appended piece, in order.
    segments: Vec<(usize, usize)>,
    /// Where the line starts in the source (used when the text stays empty).
    origin: usize,
}

impl Logical {
    pub fn new(origin: usize) -> Self {
        Self {
            text: String::new(),
            segments: Vec::new(),
            origin,
        }
    }

    /// Appends `piece`, which starts at byte `source_start` of the source.
    pub fn push(&mut self, piece: &str, source_start: usize) {
        self.segments.push((self.text.len(), source_start));
        self.text.push_str(piece);
    }

    /// The source span of the text range `start..end`.
    pub fn span(&self, start: usize, end: usize) -> Span {
        let start_src = self.map(start, false);
        let end_src = if end > start {
            self.map(end, true)
        } else {
            start_src
        };
        Span {
            start: start_src,
            end: end_src.max(start_src),
        }
    }

    /// Maps a text offset; an end offset on a piece boundary belongs to the earlier piece.
    fn map(&self, offset: usize, is_end: bool) -> usize {
        let count = self.segments.partition_point(|&(text_at, _)| {
            if is_end {
                text_at < offset
            } else {
                text_at <= offset
            }
        });
        match count.checked_sub(1).and_then(|i| self.segments.get(i)) {
            Some(&(text_at, source_at)) => source_at + (offset - text_at),
            None => self
                .segments
                .first()
                .map_or(self.origin, |&(_, source_at)| source_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_across_pieces() {
        // "RUN a \\\n  b" joined as "RUN a " + "  b"
        let mut line = Logical::new(0);
        line.push("RUN a ", 0);
        line.push("  b", 8);
        assert_eq!(line.text, "RUN a   b");
        assert_eq!(line.span(0, 3), Span { start: 0, end: 3 });
        assert_eq!(line.span(4, 9), Span { start: 4, end: 11 });
        assert_eq!(line.span(8, 9), Span { start: 10, end: 11 });
        assert_eq!(line.span(6, 6), Span { start: 8, end: 8 });
    }
}
