//! The line parser: Dockerfile text to [`Ast`], as BuildKit's `frontend/dockerfile/parser`.
//!
//! It reads parser directives at the top, joins continuation lines, splits each instruction
//! according to its keyword's parse mode and collects heredoc bodies. It does no expansion and
//! no instruction validation: unknown keywords are kept as nodes for the typed layer to reject.
//!
//! Known differences from BuildKit, all on odd input: flag words and the `HEALTHCHECK` type
//! word are scanned per character (Go scans bytes there, mangling non-ASCII text); `ONBUILD`
//! nesting deeper than 8 is an error; the heredoc lexer approximates BuildKit's shell lexer on
//! `$` forms; `<<-` bodies come back with leading tabs already removed.

mod directives;
mod heredoc;
mod json;
mod line;
mod lines;
mod logical;

use crate::ast::{Ast, Heredoc, Node, ParseWarning, Span};
use crate::{Error, Result};
use directives::DirectiveScanner;
use line::LineParser;
use lines::{Lines, RawLine, is_comment, trim_continuation};
use logical::Logical;

/// Parses a whole Dockerfile.
///
/// Fails on bad parser directives, lines longer than BuildKit accepts, JSON arrays holding
/// non-strings, `ENV`/`LABEL` without a value, unterminated heredocs, and files with no
/// instruction at all.
pub fn parse(source: &str) -> Result<Ast> {
    Parser::new(source).run()
}

/// Keywords whose (non-JSON) form may announce heredocs.
fn takes_heredocs(node: &Node) -> bool {
    let target = match (&*node.keyword, &node.next) {
        ("onbuild", Some(trigger)) => trigger,
        _ => node,
    };
    matches!(&*target.keyword, "run" | "copy" | "add") && !target.json
}

struct Parser<'s> {
    lines: Lines<'s>,
    directives: DirectiveScanner,
    nodes: Vec<Node>,
    warnings: Vec<ParseWarning>,
    /// Comments seen since the last instruction.
    comments: Vec<String>,
}

/// The physical lines that made up one instruction.
struct Gathered<'s> {
    logical: Logical,
    first: RawLine<'s>,
    last: RawLine<'s>,
    /// The first blank line inside the continuation, if any.
    empty_continuation: Option<RawLine<'s>>,
}

impl<'s> Parser<'s> {
    fn new(source: &'s str) -> Self {
        Self {
            lines: Lines::new(source),
            directives: DirectiveScanner::new(),
            nodes: Vec::new(),
            warnings: Vec::new(),
            comments: Vec::new(),
        }
    }

    fn run(mut self) -> Result<Ast> {
        while let Some(line) = self.lines.next_line()? {
            if let Some(gathered) = self.gather(line)? {
                self.instruction(gathered)?;
            }
        }
        let (Some(first), Some(last)) = (self.nodes.first(), self.nodes.last()) else {
            let end = self.lines.source_len();
            return Err(Error::new(
                "file with no instructions",
                Span { start: end, end },
            ));
        };
        let (start_line, end_line) = (first.start_line, last.end_line);
        Ok(Ast {
            directives: self.directives.directives,
            nodes: self.nodes,
            warnings: self.warnings,
            start_line,
            end_line,
        })
    }

    /// Starts an instruction at `line` and reads its continuation lines; `None` for blank,
    /// comment and directive lines.
    fn gather(&mut self, line: RawLine<'s>) -> Result<Option<Gathered<'s>>> {
        let text = line.text.trim_start();
        let offset = line.text.len() - text.len();
        self.note_comment(line.text);
        if self.directives.scan(&line, text, offset)? {
            self.comments.pop();
        }
        if is_comment(text) {
            return Ok(None);
        }
        let escape = self.directives.escape();
        let (piece, continues) = trim_continuation(text, escape);
        if !continues && piece.is_empty() {
            return Ok(None);
        }
        let mut gathered = Gathered {
            logical: Logical::new(line.start + offset),
            first: line,
            last: line,
            empty_continuation: None,
        };
        gathered.logical.push(piece, line.start + offset);
        if continues {
            self.continuation(&mut gathered, escape)?;
        }
        Ok(Some(gathered))
    }

    /// Appends continuation lines until one does not end in the escape character; comment
    /// lines are skipped, blank ones remembered for the warning.
    fn continuation(&mut self, gathered: &mut Gathered<'s>, escape: char) -> Result<()> {
        while let Some(next) = self.lines.next_line()? {
            gathered.last = next;
            if is_comment(next.text) {
                continue;
            }
            if next.text.trim_start().is_empty() {
                gathered.empty_continuation.get_or_insert(next);
                continue;
            }
            let (piece, more) = trim_continuation(next.text, escape);
            gathered.logical.push(piece, next.start);
            if !more {
                break;
            }
        }
        Ok(())
    }

    /// Collects a comment line as BuildKit does: drop the line's first character, trim; an
    /// empty comment clears what was collected.
    fn note_comment(&mut self, text: &str) {
        if !is_comment(text) {
            return;
        }
        let mut chars = text.chars();
        chars.next();
        match chars.as_str().trim() {
            "" => self.comments.clear(),
            comment => self.comments.push(comment.to_owned()),
        }
    }

    fn instruction(&mut self, gathered: Gathered<'s>) -> Result<()> {
        let parser = LineParser {
            logical: &gathered.logical,
            escape: self.directives.escape(),
        };
        let mut node = parser.node(0, gathered.logical.text.len(), 0)?;
        let start = gathered.first.start
            + (gathered.first.text.len() - gathered.first.text.trim_start().len());
        let last = self
            .heredocs(&mut node, &gathered.logical)?
            .unwrap_or(gathered.last);
        node.comments = std::mem::take(&mut self.comments);
        node.span = Span {
            start,
            end: last.span().end,
        };
        node.start_line = gathered.first.number;
        node.end_line = last.number;
        set_trigger_lines(&mut node);
        if let Some(blank) = gathered.empty_continuation {
            self.warnings.push(ParseWarning {
                rule: Some("NoEmptyContinuation"),
                message: format!(
                    "Empty continuation line found in: {}",
                    gathered.logical.text
                ),
                span: blank.span(),
                line: gathered.last.number,
            });
        }
        self.nodes.push(node);
        Ok(())
    }

    /// Reads the bodies of the heredocs the line announces; returns the last line read.
    fn heredocs(&mut self, node: &mut Node, logical: &Logical) -> Result<Option<RawLine<'s>>> {
        if !takes_heredocs(node) || !logical.text.contains("<<") {
            return Ok(None);
        }
        let mut last = None;
        for announced in heredoc::announced(&logical.text) {
            let word = logical.span(announced.start, announced.end);
            let (body, terminator) = self.heredoc_body(&announced, word)?;
            node.heredocs.push(body);
            last = Some(terminator);
        }
        Ok(last)
    }

    /// Reads a heredoc body up to its terminator line; returns it and the terminator line.
    fn heredoc_body(
        &mut self,
        announced: &heredoc::Announced,
        word: Span,
    ) -> Result<(Heredoc, RawLine<'s>)> {
        let mut content = String::new();
        let mut body_start: Option<usize> = None;
        while let Some(line) = self.lines.next_line()? {
            body_start.get_or_insert(line.start);
            let candidate = if announced.chomp {
                line.text.trim_start_matches('\t')
            } else {
                line.text
            };
            if candidate == announced.name {
                let span = Span {
                    start: body_start.unwrap_or(line.start),
                    end: line.span().end,
                };
                let heredoc = Heredoc {
                    name: announced.name.clone(),
                    content,
                    expand: announced.expand,
                    chomp: announced.chomp,
                    span,
                };
                return Ok((heredoc, line));
            }
            let kept = if announced.chomp {
                line.raw.trim_start_matches('\t')
            } else {
                line.raw
            };
            content.push_str(kept);
        }
        Err(Error::new("unterminated heredoc", word))
    }
}

/// The ONBUILD trigger shares its parent's lines.
fn set_trigger_lines(node: &mut Node) {
    let (start_line, end_line) = (node.start_line, node.end_line);
    let mut next = node.next.as_deref_mut();
    while let Some(trigger) = next {
        trigger.start_line = start_line;
        trigger.end_line = end_line;
        next = trigger.next.as_deref_mut();
    }
}
