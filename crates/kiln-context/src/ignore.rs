//! `.dockerignore` parsing and matching with moby's semantics
//! (`ignorefile.ReadAll` + `patternmatcher`, as BuildKit's file sender uses
//! them: the parent-results variant, plus the walker's directory pruning).

use std::fs;
use std::io;
use std::path::Path;

use regex::Regex;

use crate::clean::clean;
use crate::error::{Error, Result, io_err};
use crate::glob::Glob;
use crate::resolve::{Visible, resolve_in_root};

/// How one pattern is tested; mirrors moby's fast paths, whose results can
/// differ from the equivalent regex (e.g. `**foo` matches `barfoo`).
#[derive(Debug, Clone)]
enum Test {
    Exact,
    Prefix(String),
    Suffix(String),
    Regex(Regex),
}

#[derive(Debug, Clone)]
struct Pattern {
    text: String,
    exclusion: bool,
    test: Test,
}

/// Per-pattern "did this pattern match the parent directory" flags, carried
/// down a walk exactly like `patternmatcher.MatchInfo`. Empty means "no
/// parent information" (entries directly under the root).
#[derive(Debug, Clone, Default)]
pub(crate) struct MatchState {
    parent_matched: Vec<bool>,
}

/// A compiled `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct IgnoreMatcher {
    patterns: Vec<Pattern>,
}

impl IgnoreMatcher {
    /// A matcher that excludes nothing.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Parses `.dockerignore` text: BOM, `#` comments (only in column 0),
    /// blank lines, `!` exceptions, Go `filepath.Clean`, leading `/` dropped.
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut matcher = Self::default();
        for line in text.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if let Some(pattern) = normalize_line(line) {
                matcher.push(&pattern)?;
            }
        }
        Ok(matcher)
    }

    /// Compiles patterns given one by one, as moby's `patternmatcher.New`
    /// does: each is trimmed and cleaned, blank ones are skipped, `!` marks an
    /// exception. Unlike [`IgnoreMatcher::parse`] there are no comments and a
    /// leading `/` is kept (such a pattern never matches a relative path).
    pub fn from_patterns<S: AsRef<str>>(patterns: &[S]) -> Result<Self> {
        let mut matcher = Self::default();
        for pattern in patterns {
            matcher.push(pattern.as_ref())?;
        }
        Ok(matcher)
    }

    /// The compiled patterns in order, each as its cleaned text (without the
    /// `!`) and whether it is a `!` exception.
    pub fn patterns(&self) -> impl ExactSizeIterator<Item = (&str, bool)> + '_ {
        self.patterns.iter().map(|p| (p.text.as_str(), p.exclusion))
    }

    /// Loads the ignore file BuildKit would use: `<Dockerfile>.dockerignore`
    /// next to the Dockerfile wins over `<context>/.dockerignore`; neither
    /// means nothing is excluded. The context file is read with in-root
    /// symlink resolution, so a link cannot make us read outside the context.
    pub fn from_context(context: &Path, dockerfile: &Path) -> Result<Self> {
        if let Some(text) = read_dockerfile_ignore(context, dockerfile)? {
            return Self::parse(&text);
        }
        match read_in_root(context, ".dockerignore")? {
            Some(text) => Self::parse(&text),
            None => Ok(Self::empty()),
        }
    }

    /// Whether `rel_path` (slash-separated, relative to the context root) is
    /// left out of the context. Evaluated the way BuildKit's walker reaches
    /// it: ancestors first, so a pruned ancestor directory hides it too.
    /// Directory-ness does not matter: moby drops trailing slashes.
    pub fn is_excluded(&self, rel_path: &str) -> bool {
        let cleaned = clean(rel_path);
        let mut state = MatchState::default();
        let mut prefix = String::new();
        let mut parts = cleaned.split('/').filter(|p| !p.is_empty() && *p != ".");
        let Some(mut part) = parts.next() else {
            return false;
        };
        loop {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            let (excluded, next) = self.match_child(&prefix, &state);
            let Some(following) = parts.next() else {
                return excluded;
            };
            if excluded && !self.may_contain_included(&prefix) {
                return true;
            }
            state = next;
            part = following;
        }
    }

    /// Whether an excluded directory must still be walked because of `!`
    /// exceptions, by BuildKit's sender rule: if any exception (minus a
    /// trailing `/**` or `/*`) has wildcards, every excluded directory is
    /// walked; otherwise only those an exception lies under.
    pub fn may_contain_included(&self, dir_rel: &str) -> bool {
        let dir_slash = format!("{}/", clean(dir_rel));
        let prefixes: Vec<&str> = self
            .patterns
            .iter()
            .filter(|p| p.exclusion)
            .map(|p| exception_prefix(&p.text))
            .collect();
        prefixes.iter().any(|p| p.contains(WALK_ALL_CHARS))
            || prefixes
                .iter()
                .any(|p| format!("{p}/").starts_with(&dir_slash))
    }

    /// Whether any pattern excludes anything at all.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Matches `path` given its parent's state (moby's
    /// `MatchesUsingParentResults`); returns exclusion and the child state.
    pub(crate) fn match_child(&self, path: &str, parent: &MatchState) -> (bool, MatchState) {
        let inherited = &parent.parent_matched;
        let mut excluded = false;
        let mut state = vec![false; self.patterns.len()];
        for (i, pattern) in self.patterns.iter().enumerate() {
            let mut hit = inherited.get(i).copied().unwrap_or(false);
            if !hit {
                if pattern.exclusion != excluded {
                    continue;
                }
                hit = pattern.matches(path)
                    || (inherited.is_empty() && pattern.matches_parent_of(path));
            }
            state[i] = hit;
            if hit {
                excluded = !pattern.exclusion;
            }
        }
        (
            excluded,
            MatchState {
                parent_matched: state,
            },
        )
    }

    fn push(&mut self, raw: &str) -> Result<()> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Ok(());
        }
        let cleaned = clean(trimmed);
        let (exclusion, text) = match cleaned.strip_prefix('!') {
            Some("") => return Err(Error::IllegalExclusion),
            Some(rest) => (true, rest.to_owned()),
            None => (false, cleaned),
        };
        if Glob::parse(&text).is_err() {
            return Err(Error::BadIgnorePattern { pattern: text });
        }
        let test = compile(&text)?;
        self.patterns.push(Pattern {
            text,
            exclusion,
            test,
        });
        Ok(())
    }
}

/// Characters that make an exception "not a plain prefix" for the sender.
const WALK_ALL_CHARS: [char; 6] = ['*', '[', ']', '?', '^', '\\'];

/// An exception pattern without one trailing `/**`, then one trailing `/*`.
fn exception_prefix(text: &str) -> &str {
    let text = text.strip_suffix("/**").unwrap_or(text);
    text.strip_suffix("/*").unwrap_or(text)
}

/// One `.dockerignore` line to a pattern string, as `ignorefile.ReadAll` does.
fn normalize_line(line: &str) -> Option<String> {
    if line.starts_with('#') {
        return None;
    }
    let line = line.trim();
    if line.is_empty() {
        return None;
    }
    let (invert, body) = match line.strip_prefix('!') {
        Some(rest) => (true, rest.trim()),
        None => (false, line),
    };
    let mut body = if body.is_empty() {
        String::new()
    } else {
        clean(body)
    };
    if body.len() > 1 && body.starts_with('/') {
        body.remove(0);
    }
    Some(if invert { format!("!{body}") } else { body })
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        match &self.test {
            Test::Exact => path == self.text,
            Test::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Test::Suffix(suffix) => {
                path.ends_with(suffix.as_str())
                    || suffix.strip_prefix('/').is_some_and(|s| path == s)
            }
            Test::Regex(re) => re.is_match(path),
        }
    }

    /// moby's parent-directory rule: the pattern matches any ancestor.
    fn matches_parent_of(&self, path: &str) -> bool {
        path.match_indices('/')
            .any(|(i, _)| self.matches(&path[..i]))
    }
}

/// Classifies and compiles a cleaned pattern the way moby's `compile` does.
fn compile(text: &str) -> Result<Test> {
    let mut t = Translator {
        chars: text.chars().collect(),
        pos: 0,
        re: String::from("^"),
        kind: Kind::Exact,
    };
    let mut first = true;
    while let Some(c) = t.chars.get(t.pos).copied() {
        t.pos += 1;
        t.token(c, first);
        first = false;
    }
    Ok(match t.kind {
        Kind::Exact => Test::Exact,
        Kind::Prefix => Test::Prefix(text[..text.len() - 2].to_owned()),
        Kind::Suffix => Test::Suffix(text[2..].to_owned()),
        Kind::Regex => {
            t.re.push('$');
            let re = Regex::new(&go_classes(&t.re)).map_err(|_| Error::BadIgnorePattern {
                pattern: text.to_owned(),
            })?;
            Test::Regex(re)
        }
    })
}

/// moby hands its expression to Go's `regexp`, which reads brackets unlike
/// Rust's `regex`: inside a class, `[` (unless it opens a `[:name:]` class),
/// `&` and `~` are plain characters, and a `]` outside a class is literal.
/// Escapes them so the Rust expression means what Go's does (`[[]` matches
/// `[`, `[a&&b]` matches `&`, and `[*]`, which moby turns into `[[^/]*]`,
/// matches `]` or `[]` but not `*`, exactly as in moby).
fn go_classes(go: &str) -> String {
    let mut out = String::with_capacity(go.len() + 8);
    let mut rest = go;
    let mut in_class = false;
    let mut first = false;
    while let Some(c) = rest.chars().next() {
        rest = &rest[c.len_utf8()..];
        if c == '\\' {
            out.push(c);
            if let Some(next) = rest.chars().next() {
                out.push(next);
                rest = &rest[next.len_utf8()..];
            }
            first = false;
            continue;
        }
        if !in_class {
            match c {
                '[' => {
                    out.push('[');
                    if let Some(after) = rest.strip_prefix('^') {
                        out.push('^');
                        rest = after;
                    }
                    in_class = true;
                    first = true;
                }
                ']' => out.push_str("\\]"),
                _ => out.push(c),
            }
            continue;
        }
        match c {
            ']' if !first => {
                out.push(']');
                in_class = false;
            }
            '[' if rest.starts_with(':') && rest[1..].contains(":]") => {
                // Go's POSIX class, which Rust spells the same way.
                let end = 1 + rest[1..].find(":]").unwrap_or(0) + 2;
                out.push('[');
                out.push_str(&rest[..end]);
                rest = &rest[end..];
            }
            '[' | ']' | '&' | '~' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
        first = false;
    }
    out
}

/// Which of moby's match strategies a pattern needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Exact,
    Prefix,
    Suffix,
    Regex,
}

/// Pattern-to-regex translation state.
struct Translator {
    chars: Vec<char>,
    pos: usize,
    re: String,
    kind: Kind,
}

impl Translator {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn token(&mut self, c: char, first: bool) {
        match c {
            '*' if self.peek() == Some('*') => self.double_star(first),
            '*' => self.wildcard("[^/]*"),
            '?' => self.wildcard("[^/]"),
            // Regex metacharacters with no meaning in `filepath.Match`.
            '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$' => {
                self.re.push('\\');
                self.re.push(c);
            }
            '\\' => self.escape(),
            '[' | ']' => {
                self.re.push(c);
                self.kind = Kind::Regex;
            }
            other => self.re.push(other),
        }
    }

    fn wildcard(&mut self, re: &str) {
        self.re.push_str(re);
        self.kind = Kind::Regex;
    }

    /// `\x` matches `x` literally; a trailing `\` was rejected by validation.
    fn escape(&mut self) {
        self.re.push('\\');
        if let Some(next) = self.peek() {
            self.pos += 1;
            self.re.push(next);
            self.kind = Kind::Regex;
        }
    }

    /// `**` (with an optional following `/`) spans directories; at the end
    /// it accepts everything, at the start it becomes a suffix test.
    fn double_star(&mut self, first: bool) {
        self.pos += 1;
        if self.peek() == Some('/') {
            self.pos += 1;
        }
        if self.peek().is_some() {
            self.wildcard("(.*/)?");
        } else if self.kind == Kind::Exact {
            self.kind = Kind::Prefix;
        } else {
            self.wildcard(".*");
        }
        if first {
            self.kind = Kind::Suffix;
        }
    }
}

fn read_dockerfile_ignore(context: &Path, dockerfile: &Path) -> Result<Option<String>> {
    let Some(name) = dockerfile.file_name() else {
        return Ok(None);
    };
    let mut ignore_name = name.to_os_string();
    ignore_name.push(".dockerignore");
    let candidate = dockerfile.with_file_name(ignore_name);
    if let Ok(inside) = candidate.strip_prefix(context) {
        let Some(rel) = inside.to_str() else {
            return Ok(None);
        };
        return read_in_root(context, rel);
    }
    match fs::read(&candidate) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("reading", &candidate)(e)),
    }
}

/// Reads a small text file inside `root`, resolving symlinks within it.
fn read_in_root(root: &Path, rel: &str) -> Result<Option<String>> {
    let all = |_: &str, _: bool| true;
    let Some(resolved) = resolve_in_root(root, rel, true, &all as &Visible<'_>)? else {
        return Ok(None);
    };
    let path = root.join(&resolved);
    match fs::symlink_metadata(&path) {
        Ok(meta) if meta.is_file() => fs::read(&path)
            .map(|bytes| Some(String::from_utf8_lossy(&bytes).into_owned()))
            .map_err(io_err("reading", &path)),
        _ => Ok(None),
    }
}
