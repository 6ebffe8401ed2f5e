//! One logical line to one [`Node`]: BuildKit's `splitCommand`, `extractBuilderFlags` and the
//! per-keyword line parsers (the "parse modes").

use super::json::{self, JsonArray};
use super::logical::Logical;
use crate::ast::{Flag, Node, Word};
use crate::{Error, Result};

/// `ONBUILD ONBUILD ...` deeper than this is rejected here instead of recursing further; the
/// instruction layer refuses any nested ONBUILD anyway.
const MAX_ONBUILD_DEPTH: usize = 8;

/// BuildKit's `reWhitespace` (`[\t\v\f\r ]`): what splits words in whitespace-split modes.
fn is_split_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\x0b' | '\x0c' | '\r')
}

/// Arguments produced by a keyword's line parser.
#[derive(Debug, Default)]
struct Parsed {
    args: Vec<Word>,
    json: bool,
    next: Option<Box<Node>>,
}

/// Builds nodes out of one logical line.
pub(super) struct LineParser<'a> {
    pub logical: &'a Logical,
    pub escape: char,
}

impl LineParser<'_> {
    fn text(&self, start: usize, end: usize) -> &str {
        self.logical.text.get(start..end).unwrap_or("")
    }

    fn word(&self, value: impl Into<String>, start: usize, end: usize) -> Word {
        Word {
            value: value.into(),
            span: self.logical.span(start, end),
        }
    }

    fn error(&self, message: String, start: usize, end: usize) -> Error {
        Error::new(message, self.logical.span(start, end))
    }

    /// The node for the text `base..limit` of the line; span and lines cover that text and
    /// are widened by the caller for a top-level instruction.
    pub fn node(&self, base: usize, limit: usize, depth: usize) -> Result<Node> {
        let full = self.text(base, limit);
        let (start, end) = trimmed_range(full, base);
        let body = self.text(start, end);
        let cmd_end = body.find(is_split_space).map_or(end, |i| start + i);
        let keyword_raw = self.text(start, cmd_end);
        let keyword = keyword_raw.to_lowercase();
        let after_cmd = self.text(cmd_end, end);
        let rest_start = end - after_cmd.trim_start_matches(is_split_space).len();
        let (flags, args_from) = if cmd_end < end {
            self.flags(rest_start, end)
        } else {
            (Vec::new(), end)
        };
        let (args_start, args_end) = trimmed_range(self.text(args_from, end), args_from);
        let parsed = self.dispatch(&keyword, args_start, args_end, depth)?;
        Ok(Node {
            keyword,
            keyword_span: self.logical.span(start, cmd_end),
            flags,
            args: parsed.args,
            json: parsed.json,
            heredocs: Vec::new(),
            next: parsed.next,
            original: full.to_owned(),
            comments: Vec::new(),
            span: self.logical.span(start, end),
            start_line: 0,
            end_line: 0,
        })
    }

    fn dispatch(&self, keyword: &str, start: usize, end: usize, depth: usize) -> Result<Parsed> {
        let args = |args| Parsed {
            args,
            ..Parsed::default()
        };
        Ok(match keyword {
            "add" | "copy" | "volume" => self.maybe_json_to_list(start, end)?,
            "cmd" | "entrypoint" | "run" | "shell" => self.maybe_json(start, end)?,
            "env" => args(self.name_val(start, end, "ENV")?),
            "label" => args(self.name_val(start, end, "LABEL")?),
            "arg" => args(self.raw_words(start, end)),
            "expose" | "from" => args(self.split_words(start, end)),
            "maintainer" | "stopsignal" | "user" | "workdir" => args(self.whole(start, end)),
            "healthcheck" => self.healthcheck(start, end)?,
            "onbuild" => self.onbuild(start, end, depth)?,
            _ => Parsed::default(),
        })
    }

    /// Leading `--flag` words (quotes and backslashes processed, `--` ends them); returns the
    /// flags and where the arguments start.
    fn flags(&self, start: usize, end: usize) -> (Vec<Flag>, usize) {
        let mut scan = FlagScan::default();
        let args_from = scan.run(self.text(start, end), start);
        let flags = scan
            .flags
            .into_iter()
            .map(|(text, s, e)| Flag {
                text,
                span: self.logical.span(s, e),
            })
            .collect();
        (flags, args_from.unwrap_or(end))
    }

    /// The whole arguments text as one word (empty text: no argument).
    fn whole(&self, start: usize, end: usize) -> Vec<Word> {
        if start == end {
            return Vec::new();
        }
        vec![self.word(self.text(start, end), start, end)]
    }

    /// One word per run of non-blank text (`FROM`, `EXPOSE`, shell-form `COPY`).
    fn split_words(&self, start: usize, end: usize) -> Vec<Word> {
        let text = self.text(start, end);
        if text.is_empty() {
            return Vec::new();
        }
        let mut words = Vec::new();
        let mut piece_start = 0;
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if is_split_space(c) {
                words.push(self.word(&text[piece_start..i], start + piece_start, start + i));
                while chars.next_if(|&(_, c)| is_split_space(c)).is_some() {}
                piece_start = chars.peek().map_or(text.len(), |&(j, _)| j);
            }
        }
        words.push(self.word(&text[piece_start..], start + piece_start, end));
        words
    }

    fn json(&self, start: usize, end: usize) -> Result<Option<Parsed>> {
        match json::parse_array(self.text(start, end)) {
            JsonArray::Strings(elements) => {
                let args = elements
                    .into_iter()
                    .map(|e| self.word(e.value, start + e.start, start + e.end))
                    .collect();
                Ok(Some(Parsed {
                    args,
                    json: true,
                    next: None,
                }))
            }
            JsonArray::NotStrings => Err(self.error(
                "when using JSON array syntax, arrays must be comprised of strings only".into(),
                start,
                end,
            )),
            JsonArray::Invalid => Ok(None),
        }
    }

    /// Exec form when the text is a JSON string array, else the whole text as one word.
    fn maybe_json(&self, start: usize, end: usize) -> Result<Parsed> {
        if start == end {
            return Ok(Parsed::default());
        }
        Ok(match self.json(start, end)? {
            Some(parsed) => parsed,
            None => Parsed {
                args: self.whole(start, end),
                ..Parsed::default()
            },
        })
    }

    /// Exec form when the text is a JSON string array, else whitespace-split words.
    fn maybe_json_to_list(&self, start: usize, end: usize) -> Result<Parsed> {
        Ok(match self.json(start, end)? {
            Some(parsed) => parsed,
            None => Parsed {
                args: self.split_words(start, end),
                ..Parsed::default()
            },
        })
    }

    /// `HEALTHCHECK [flags] TYPE [command]`: the type word, then the command as in `CMD`.
    fn healthcheck(&self, start: usize, end: usize) -> Result<Parsed> {
        let text = self.text(start, end);
        let sep = text.find(char::is_whitespace).unwrap_or(text.len());
        if sep == 0 {
            return Ok(Parsed::default());
        }
        let cmd_from = end - text.get(sep..).unwrap_or("").trim_start().len();
        let mut parsed = self.maybe_json(cmd_from, end)?;
        parsed.args.insert(
            0,
            self.word(self.text(start, start + sep), start, start + sep),
        );
        Ok(parsed)
    }

    fn onbuild(&self, start: usize, end: usize, depth: usize) -> Result<Parsed> {
        if start == end {
            return Ok(Parsed::default());
        }
        if depth >= MAX_ONBUILD_DEPTH {
            return Err(self.error("ONBUILD nested too deeply".into(), start, end));
        }
        let trigger = self.node(start, end, depth + 1)?;
        Ok(Parsed {
            next: Some(Box::new(trigger)),
            ..Parsed::default()
        })
    }

    /// `ARG` words, quotes and escapes kept raw.
    fn raw_words(&self, start: usize, end: usize) -> Vec<Word> {
        split_raw(self.text(start, end), self.escape)
            .into_iter()
            .map(|(value, s, e)| self.word(value, start + s, start + e))
            .collect()
    }

    /// `ENV`/`LABEL`: `k=v` pairs give `k v =` triples; the legacy `k v...` form gives
    /// `k v ""` where v is the rest of the line.
    fn name_val(&self, start: usize, end: usize, key: &str) -> Result<Vec<Word>> {
        let text = self.text(start, end);
        let words = split_raw(text, self.escape);
        let Some((first, ..)) = words.first() else {
            return Ok(Vec::new());
        };
        if !first.contains('=') {
            return self.legacy_name_val(start, end, key);
        }
        let mut out = Vec::with_capacity(words.len() * 3);
        for (word, s, e) in words {
            let Some(eq) = word.find('=') else {
                let msg = format!(
                    "Syntax error - can't find = in {word:?}. Must be of the form: name=value"
                );
                return Err(self.error(msg, start + s, start + e));
            };
            let (at, value_at) = (start + s + eq, start + s + eq + 1);
            out.push(self.word(&word[..eq], start + s, at));
            out.push(self.word(&word[eq + 1..], value_at, start + e));
            out.push(self.word("=", at, value_at));
        }
        Ok(out)
    }

    fn legacy_name_val(&self, start: usize, end: usize, key: &str) -> Result<Vec<Word>> {
        let text = self.text(start, end);
        let Some(sep) = text.find(is_split_space) else {
            return Err(self.error(format!("{key} must have two arguments"), start, end));
        };
        let value_rel = text.len() - text[sep..].trim_start_matches(is_split_space).len();
        Ok(vec![
            self.word(&text[..sep], start, start + sep),
            self.word(&text[value_rel..], start + value_rel, end),
            self.word("", end, end),
        ])
    }
}

/// The range of `text` (which starts at `base`) without leading and trailing blanks.
fn trimmed_range(text: &str, base: usize) -> (usize, usize) {
    let start = base + (text.len() - text.trim_start().len());
    (start, start + text.trim().len())
}

/// Scanner state for leading `--flag` words.
#[derive(Default)]
struct FlagScan {
    flags: Vec<(String, usize, usize)>,
}

impl FlagScan {
    /// Collects flags from `text` (at offset `base`); returns where the arguments start, or
    /// `None` when the text holds only flags.
    fn run(&mut self, text: &str, base: usize) -> Option<usize> {
        let mut chars = text.char_indices().peekable();
        loop {
            while chars.next_if(|&(_, c)| c.is_whitespace()).is_some() {}
            let &(at, _) = chars.peek()?;
            if !text.get(at..).is_some_and(|t| t.starts_with("--")) {
                return Some(base + at);
            }
            let (word, blank_ok, word_end) = flag_word(&mut chars, text.len());
            if word == "--" {
                return (word_end < text.len()).then_some(base + word_end);
            }
            if blank_ok || !word.is_empty() {
                self.flags.push((word, base + at, base + word_end));
            }
        }
    }
}

/// Reads one flag word up to unquoted whitespace: `(value, had_quotes, end offset)`.
fn flag_word(
    chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
    len: usize,
) -> (String, bool, usize) {
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut blank_ok = false;
    while let Some(&(i, c)) = chars.peek() {
        if quote.is_none() && c.is_whitespace() {
            return (word, blank_ok, i);
        }
        chars.next();
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (None, '\'' | '"') => {
                quote = Some(c);
                blank_ok = true;
            }
            (_, '\\') => {
                if let Some((_, next)) = chars.next() {
                    word.push(next);
                }
            }
            (_, c) => word.push(c),
        }
    }
    (word, blank_ok, len)
}

/// BuildKit's `parseWords`: splits on blanks outside quotes, keeping quotes and escape
/// characters in the words. Returns `(word, start, end)` with byte offsets into `text`.
pub(super) fn split_raw(text: &str, escape: char) -> Vec<(String, usize, usize)> {
    let mut words = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let (word, blank_ok, end) = raw_word(&mut chars, escape, text.len());
        if blank_ok || !word.is_empty() {
            words.push((word, start, end));
        }
    }
    words
}

fn raw_word(
    chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
    escape: char,
    len: usize,
) -> (String, bool, usize) {
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut blank_ok = false;
    while let Some(&(i, c)) = chars.peek() {
        if quote.is_none() && c.is_whitespace() {
            return (word, blank_ok, i);
        }
        chars.next();
        match quote {
            Some(q) if c == q => quote = None,
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                blank_ok = true;
            }
            Some('\'') => {}
            _ if c == escape => {
                // An escape at the very end is dropped; otherwise it stays with its char.
                let Some((_, next)) = chars.next() else { break };
                word.push(c);
                word.push(next);
                continue;
            }
            _ => {}
        }
        word.push(c);
    }
    (word, blank_ok, len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        split_raw(text, '\\').into_iter().map(|(w, ..)| w).collect()
    }

    #[test]
    fn raw_words_keep_quotes_and_escapes() {
        assert_eq!(words(r#"abc="123 456" def"#), ["abc=\"123 456\"", "def"]);
        assert_eq!(words(r"name=value\ value2 x"), [r"name=value\ value2", "x"]);
        assert_eq!(words(r"name='a\'b''"), [r"name='a\'b''"]);
        assert_eq!(words(r#"a="b\"c""#), [r#"a="b\"c""#]);
        assert_eq!(words("a\\"), ["a"]);
        assert_eq!(words("''"), ["''"]);
    }

    fn flags(text: &str) -> (Vec<String>, Option<usize>) {
        let mut scan = FlagScan::default();
        let at = scan.run(text, 0);
        (scan.flags.into_iter().map(|(f, ..)| f).collect(), at)
    }

    #[test]
    fn flag_scan() {
        assert_eq!(
            flags("--a=1 --b x"),
            (vec!["--a=1".into(), "--b".into()], Some(10))
        );
        assert_eq!(flags("--a -- --b"), (vec!["--a".into()], Some(6)));
        assert_eq!(flags("--a --"), (vec!["--a".into()], None));
        assert_eq!(flags("--m=\"a b\" x"), (vec!["--m=a b".into()], Some(10)));
        assert_eq!(flags("-a"), (vec![], Some(0)));
    }
}
