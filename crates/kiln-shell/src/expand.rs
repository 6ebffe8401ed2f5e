//! One pass over a word, with the same grammar and quirks as BuildKit's `shellWord`.

use std::collections::BTreeSet;

use crate::chars::{is_digit, is_letter, is_space};
use crate::{Env, ExpandError, Lexer, pattern};

/// How deeply `${...}` may nest. BuildKit has no limit; this one only keeps a
/// hostile word from exhausting the stack.
const MAX_DEPTH: usize = 100;

const MISSING_BRACE: &str = "syntax error: missing '}'";
const MISSING_SLASH: &str = "syntax error: missing '/' in ${}";

/// What Go prints for the rune read at the end of input.
const NO_RUNE: char = '\u{FFFD}';

/// Everything one expansion produces.
pub(crate) struct Output {
    pub(crate) value: String,
    pub(crate) words: Vec<String>,
    pub(crate) matched: BTreeSet<String>,
    pub(crate) unmatched: BTreeSet<String>,
}

/// Expands `word`, both as one string and split into words.
pub(crate) fn run(lexer: &Lexer, word: &str, env: &dyn Env) -> Result<Output, ExpandError> {
    let mut ex = Expander {
        lexer,
        env,
        sc: Scanner::new(word),
        matched: BTreeSet::new(),
        unmatched: BTreeSet::new(),
        depth: 0,
        operands: 0,
    };
    let mut words = Words::default();
    let value = ex.scan(None, lexer.raw_escapes, Some(&mut words))?;
    Ok(Output {
        value,
        words: words.finish(),
        matched: ex.matched,
        unmatched: ex.unmatched,
    })
}

fn error(message: impl Into<String>, offset: usize) -> ExpandError {
    ExpandError {
        message: message.into(),
        offset,
    }
}

fn unsupported(modifier: &str, offset: usize) -> ExpandError {
    error(
        format!("unsupported modifier ({modifier}) in substitution"),
        offset,
    )
}

/// Reads a word a character at a time, like Go's `text/scanner` in raw mode.
struct Scanner<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    /// Go's scanner silently drops a byte-order mark at the very start.
    fn new(src: &'a str) -> Self {
        let pos = if src.starts_with('\u{FEFF}') { 3 } else { 0 };
        Self { src, pos }
    }

    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }
}

/// Word splitting of the top-level text.
///
/// Unquoted whitespace ends a word; quoted or escaped text never splits, but
/// an empty word (`""`) is dropped, as in BuildKit.
#[derive(Default)]
struct Words {
    done: Vec<String>,
    pending: String,
}

impl Words {
    fn add_char(&mut self, c: char) {
        if is_space(c) {
            self.flush();
        } else {
            self.pending.push(c);
        }
    }

    fn add_split(&mut self, text: &str) {
        text.chars().for_each(|c| self.add_char(c));
    }

    fn add_raw(&mut self, text: &str) {
        self.pending.push_str(text);
    }

    fn flush(&mut self) {
        if !self.pending.is_empty() {
            self.done.push(std::mem::take(&mut self.pending));
        }
    }

    fn finish(mut self) -> Vec<String> {
        self.flush();
        self.done
    }
}

struct Expander<'a> {
    lexer: &'a Lexer,
    env: &'a dyn Env,
    sc: Scanner<'a>,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
    /// Current `$` nesting.
    depth: usize,
    /// How many `${...}` operands have been read so far.
    operands: usize,
}

impl<'a> Expander<'a> {
    /// Expands up to `stop` (consumed) or the end of the word.
    ///
    /// `raw` keeps escape characters; BuildKit turns it on inside pattern
    /// operands and off inside `-`, `+` and `?` operands.
    fn scan(
        &mut self,
        stop: Option<char>,
        raw: bool,
        mut words: Option<&mut Words>,
    ) -> Result<String, ExpandError> {
        let mut out = String::new();
        while let Some(ch) = self.sc.peek() {
            if Some(ch) == stop {
                self.sc.next();
                return Ok(out);
            }
            if matches!(ch, '$' | '\'' | '"') {
                let before = self.operands;
                let piece = self.special(ch, raw)?;
                out.push_str(&piece);
                if let Some(words) = words.as_deref_mut() {
                    add_piece(words, ch, &piece, self.operands != before);
                }
            } else if !self.plain(raw, &mut out, words.as_deref_mut()) {
                break;
            }
        }
        match stop {
            Some(stop) => Err(error(
                format!("unexpected end of statement while looking for matching {stop}"),
                self.sc.pos,
            )),
            None => Ok(out),
        }
    }

    fn special(&mut self, ch: char, raw: bool) -> Result<String, ExpandError> {
        match ch {
            '$' => self.dollar(),
            '\'' => self.single_quoted(),
            _ => self.double_quoted(raw),
        }
    }

    /// Copies one character, or an escape and the character it quotes.
    /// Returns false when an escape ends the word; that escape is kept only if `raw`.
    fn plain(&mut self, raw: bool, out: &mut String, mut words: Option<&mut Words>) -> bool {
        let Some(ch) = self.sc.next() else {
            return false;
        };
        if ch != self.lexer.escape {
            out.push(ch);
            words.iter_mut().for_each(|w| w.add_char(ch));
            return true;
        }
        if raw {
            out.push(ch);
            words
                .iter_mut()
                .for_each(|w| w.add_raw(ch.encode_utf8(&mut [0; 4])));
        }
        let Some(quoted) = self.sc.next() else {
            return false;
        };
        out.push(quoted);
        words
            .iter_mut()
            .for_each(|w| w.add_raw(quoted.encode_utf8(&mut [0; 4])));
        true
    }

    /// `'...'`: everything literal, no escapes.
    fn single_quoted(&mut self) -> Result<String, ExpandError> {
        let start = self.sc.pos;
        let mut out = String::new();
        let quote = self.sc.next();
        out.extend(quote.filter(|_| self.lexer.raw_quotes));
        loop {
            match self.sc.next() {
                None => {
                    return Err(error(
                        "unexpected end of statement while looking for matching single-quote",
                        start,
                    ));
                }
                Some('\'') => {
                    out.extend(quote.filter(|_| self.lexer.raw_quotes));
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    /// `"..."`: `$` expands; the escape character quotes only `"`, `$` and itself.
    fn double_quoted(&mut self, raw: bool) -> Result<String, ExpandError> {
        let start = self.sc.pos;
        let mut out = String::new();
        let quote = self.sc.next();
        out.extend(quote.filter(|_| self.lexer.raw_quotes));
        loop {
            match self.sc.peek() {
                None => {
                    return Err(error(
                        "unexpected end of statement while looking for matching double-quote",
                        start,
                    ));
                }
                Some('"') => {
                    self.sc.next();
                    out.extend(quote.filter(|_| self.lexer.raw_quotes));
                    return Ok(out);
                }
                Some('$') => out.push_str(&self.dollar()?),
                Some(_) => self.double_quoted_char(raw, &mut out),
            }
        }
    }

    fn double_quoted_char(&mut self, raw: bool, out: &mut String) {
        let Some(ch) = self.sc.next() else {
            return;
        };
        let escape = self.lexer.escape;
        if ch != escape {
            out.push(ch);
            return;
        }
        if raw {
            out.push(ch);
        }
        match self.sc.peek() {
            // A trailing escape is dropped; the missing quote is reported next.
            None => {}
            Some(c) if c == '"' || c == '$' || c == escape => {
                self.sc.next();
                out.push(c);
            }
            // Not escapable: the escape stays (twice when raw, like BuildKit).
            Some(_) => out.push(ch),
        }
    }

    /// `$name`, `${name}` or `${name<op>word}`, starting at the `$`.
    fn dollar(&mut self) -> Result<String, ExpandError> {
        let start = self.sc.pos;
        if self.depth >= MAX_DEPTH {
            return Err(error(
                "syntax error: substitutions nested too deeply",
                start,
            ));
        }
        self.depth += 1;
        let result = self.dollar_body(start);
        self.depth -= 1;
        result
    }

    fn dollar_body(&mut self, start: usize) -> Result<String, ExpandError> {
        self.sc.next();
        if self.sc.peek() != Some('{') {
            return Ok(self.bare());
        }
        self.sc.next();
        match self.sc.peek() {
            None => return Err(error(MISSING_BRACE, start)),
            Some('{' | '}' | ':') => return Err(error("syntax error: bad substitution", start)),
            Some(_) => {}
        }
        let name = self.name();
        let op = self.sc.next();
        let op_text = String::from(op.unwrap_or(NO_RUNE));
        match op {
            Some('}') => Ok(self.braced(&name)),
            Some(':') => {
                let op = self.sc.next();
                let op_text = format!(":{}", op.unwrap_or(NO_RUNE));
                self.modifier(&name, op, &op_text, start)
            }
            Some('+' | '-' | '?' | '#' | '%') => self.modifier(&name, op, &op_text, start),
            Some('/') => self.replace(&name, start),
            _ => Err(unsupported(&op_text, start)),
        }
    }

    /// `$name`; a `$` not followed by a name stays literal.
    fn bare(&mut self) -> String {
        let name = self.name();
        if name.is_empty() {
            return "$".to_owned();
        }
        match self.lookup(&name) {
            Some(value) => value.to_owned(),
            None if self.lexer.skip_unset_env => format!("${name}"),
            None => String::new(),
        }
    }

    fn braced(&mut self, name: &str) -> String {
        match self.lookup(name) {
            Some(value) => value.to_owned(),
            None if self.lexer.skip_unset_env => format!("${{{name}}}"),
            None => String::new(),
        }
    }

    /// `${name<op>word}` for `-`, `+`, `?`, `#`, `%` and their `:` forms.
    ///
    /// `op_text` is the operator as written (`-`, `:-`, ...); a `:` form also
    /// treats an empty value as unset.
    fn modifier(
        &mut self,
        name: &str,
        op: Option<char>,
        op_text: &str,
        start: usize,
    ) -> Result<String, ExpandError> {
        let is_pattern = matches!(op, Some('#' | '%'));
        let colon = op_text.starts_with(':');
        if colon && is_pattern {
            return Err(unsupported(op_text, start));
        }
        let word = self.operand('}', is_pattern, start, MISSING_BRACE)?;
        let value = self.lookup(name);
        if value.is_none() && self.lexer.skip_unset_env {
            return Ok(format!("${{{name}{op_text}{word}}}"));
        }
        let missing = value.is_none_or(|v| colon && v.is_empty());
        match op {
            Some('-') => Ok(if missing {
                word
            } else {
                value.unwrap_or_default().to_owned()
            }),
            Some('+') => Ok(if missing { String::new() } else { word }),
            Some('?') => required(name, value, colon, &word, start),
            Some(c @ ('#' | '%')) => trim(c, &word, value.unwrap_or_default(), start),
            _ => Err(unsupported(op_text, start)),
        }
    }

    /// `${name/pattern/repl}` and `${name//pattern/repl}`.
    fn replace(&mut self, name: &str, start: usize) -> Result<String, ExpandError> {
        let all = self.sc.peek() == Some('/');
        if all {
            self.sc.next();
        }
        let pat = self.operand('/', true, start, MISSING_SLASH)?;
        let repl = self.operand('}', true, start, MISSING_BRACE)?;
        let value = self.lookup(name);
        if value.is_none() && self.lexer.skip_unset_env {
            // BuildKit writes a single `/` back even for `//`.
            return Ok(format!("${{{name}/{pat}/{repl}}}"));
        }
        pattern::replace(&pat, value.unwrap_or_default(), &repl, all)
            .map_err(|message| error(message, start))
    }

    /// Reads the word part of `${...}` up to `stop`. Any failure once the
    /// input has run out is reported as the missing `stop`, as BuildKit does.
    fn operand(
        &mut self,
        stop: char,
        raw: bool,
        start: usize,
        missing: &str,
    ) -> Result<String, ExpandError> {
        self.operands += 1;
        self.scan(Some(stop), raw, None).map_err(|e| {
            if self.sc.peek().is_none() {
                error(missing, start)
            } else {
                e
            }
        })
    }

    /// A variable name: a run of digits, one special parameter character, or
    /// letters, digits and `_`. Empty when none of these follows.
    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.sc.peek() {
            if name.is_empty() && is_digit(ch) {
                while let Some(d) = self.sc.peek().filter(|&d| is_digit(d)) {
                    self.sc.next();
                    name.push(d);
                }
                return name;
            }
            if name.is_empty() && is_special_param(ch) {
                self.sc.next();
                return ch.to_string();
            }
            if !is_letter(ch) && !is_digit(ch) && ch != '_' {
                break;
            }
            self.sc.next();
            name.push(ch);
        }
        name
    }

    /// Looks `name` up and records whether it was set (for the UndefinedVar lint).
    fn lookup(&mut self, name: &str) -> Option<&'a str> {
        let env = self.env;
        let value = env.get(name);
        let seen = if value.is_some() {
            &mut self.matched
        } else {
            &mut self.unmatched
        };
        seen.insert(name.to_owned());
        value
    }
}

/// Adds one quoted or `$` piece to the split words.
///
/// BuildKit shares one pending-word buffer between the top level and every
/// `${...}` operand it reads, and each operand clears it, so text gathered
/// before such a piece is lost from the word list (`a${X:-b}` splits to
/// `[b]`). `nested_operand` says whether that happened while reading `piece`.
fn add_piece(words: &mut Words, ch: char, piece: &str, nested_operand: bool) {
    if nested_operand {
        words.pending.clear();
    }
    if ch == '$' {
        words.add_split(piece);
    } else {
        words.add_raw(piece);
    }
}

/// The parameters of POSIX sh 2.5.2 that `$` accepts as one-character names.
fn is_special_param(c: char) -> bool {
    matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')
}

/// `${name?word}` / `${name:?word}`: the value, or an error naming the variable.
fn required(
    name: &str,
    value: Option<&str>,
    colon: bool,
    word: &str,
    start: usize,
) -> Result<String, ExpandError> {
    let reason = match value {
        None => "is not allowed to be unset",
        Some("") if colon => "is not allowed to be empty",
        Some(value) => return Ok(value.to_owned()),
    };
    let message = if word.is_empty() { reason } else { word };
    Err(error(format!("{name}: {message}"), start))
}

/// `${name#p}`, `${name##p}`, `${name%p}`, `${name%%p}`; the doubled
/// operator arrives as the first character of `word`.
fn trim(op: char, word: &str, value: &str, start: usize) -> Result<String, ExpandError> {
    let (greedy, pat) = match word.strip_prefix(op) {
        Some(rest) => (true, rest),
        None => (false, word),
    };
    let trimmed = if op == '%' {
        pattern::trim_suffix(pat, value, greedy)
    } else {
        pattern::trim_prefix(pat, value, greedy)
    };
    trimmed.map_err(|message| error(message, start))
}
