//! Shell-word expansion of Dockerfile arguments, as BuildKit's shell lexer does it.
//!
//! The goal is byte-for-byte agreement with BuildKit's
//! `frontend/dockerfile/shell` package on Unix, quirks included, so that a
//! Dockerfile expands to the same image under kiln as under `docker build`:
//!
//! - inside double quotes the escape character quotes only `"`, `$` and itself;
//! - `${V#p}`-style patterns know `*`, `?` and `\` only: brackets are literal,
//!   quotes in a pattern do not stop `*` from matching, and `*`/`?` never
//!   match a newline;
//! - `${V/p/r}` has no `#`/`%` anchors, and `${V//p/r}` expands `$0` in `r`;
//! - word splitting drops empty words, even quoted ones, and loses text that
//!   precedes a `${V<op>word}` in the same word (see `process_words`).
//!
//! Windows behaviour (case-insensitive names) is not reproduced. The one
//! deliberate difference is a nesting limit on `${...}` that keeps hostile
//! input from exhausting the stack.

use std::collections::{BTreeMap, BTreeSet, HashMap};

mod chars;
mod expand;
mod pattern;

/// Where expansion reads variables from.
pub trait Env {
    /// The value of `name`, or `None` when it is not set.
    fn get(&self, name: &str) -> Option<&str>;
}

impl Env for HashMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        HashMap::get(self, name).map(String::as_str)
    }
}

impl Env for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        BTreeMap::get(self, name).map(String::as_str)
    }
}

/// A list of assignments where, as in BuildKit, the last one for a name wins.
impl Env for [(String, String)] {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Env for Vec<(String, String)> {
    fn get(&self, name: &str) -> Option<&str> {
        Env::get(self.as_slice(), name)
    }
}

impl<T: Env + ?Sized> Env for &T {
    fn get(&self, name: &str) -> Option<&str> {
        (**self).get(name)
    }
}

/// The result of expanding one word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expansion {
    /// The expanded text.
    pub value: String,
    /// Variable names referenced that were set.
    pub matched: BTreeSet<String>,
    /// Variable names referenced that were not set.
    pub unmatched: BTreeSet<String>,
}

/// Why a word could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExpandError {
    /// The reason, worded like BuildKit's (`V: is not allowed to be unset`),
    /// without the `failed to process "<word>": ` prefix BuildKit adds.
    pub message: String,
    /// Byte offset in the word of the `$` or quote that starts the failing
    /// construct, so a diagnostic can point at it.
    pub offset: usize,
}

/// Expands shell words the way BuildKit's Dockerfile frontend does.
#[derive(Debug, Clone)]
pub struct Lexer {
    escape: char,
    raw_quotes: bool,
    raw_escapes: bool,
    skip_unset_env: bool,
}

impl Lexer {
    /// A lexer using `escape` (`\` or `` ` ``) as the escape character.
    pub fn new(escape: char) -> Self {
        Self {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset_env: false,
        }
    }

    /// Keep quote characters in the output (BuildKit's `RawQuotes`).
    pub fn raw_quotes(mut self, yes: bool) -> Self {
        self.raw_quotes = yes;
        self
    }

    /// Keep escape characters in the output (BuildKit's `RawEscapes`). As in
    /// BuildKit, the word of `${V:-word}`, `${V:+word}` and `${V?word}` drops
    /// its escapes regardless, and pattern operands always keep theirs.
    pub fn raw_escapes(mut self, yes: bool) -> Self {
        self.raw_escapes = yes;
        self
    }

    /// Leave references to unset variables as written, operator and all
    /// (BuildKit's `SkipUnsetEnv`; it writes `${V//p/r}` back as `${V/p/r}`).
    pub fn skip_unset_env(mut self, yes: bool) -> Self {
        self.skip_unset_env = yes;
        self
    }

    /// Expands `word` into a single string, noting which variables it used.
    pub fn process_word(&self, word: &str, env: &dyn Env) -> Result<Expansion, ExpandError> {
        let out = expand::run(self, word, env)?;
        Ok(Expansion {
            value: out.value,
            matched: out.matched,
            unmatched: out.unmatched,
        })
    }

    /// Expands `word` and splits the result on whitespace that was neither
    /// quoted nor escaped. Splitting happens after expansion, so a variable's
    /// value splits too unless it was inside quotes. Empty words are dropped.
    ///
    /// BuildKit quirk kept for identical results: reading the word of a
    /// `${V<op>word}` discards what the current word had gathered before it,
    /// so `a${V:-b}` gives `["b"]` here although `process_word` gives `ab`.
    pub fn process_words(&self, word: &str, env: &dyn Env) -> Result<Vec<String>, ExpandError> {
        Ok(expand::run(self, word, env)?.words)
    }
}
