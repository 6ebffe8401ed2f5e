//! `.dockerignore` as moby reads and matches it (`patternmatcher` and its `ignorefile`):
//! Go `filepath.Match` syntax (`*`, `?`, `[...]`, `\` escapes) plus `**` for any number of
//! directories, `!` exceptions, the last matching pattern wins, patterns are cleaned
//! (`./a/../b/` is `b`, a leading `/` is dropped), and a path is excluded when it or one of its
//! parent directories matches.
//!
//! A `<Dockerfile>.dockerignore` beside the Dockerfile wins over the context's `.dockerignore`.
//! The build context reuses this matcher to filter what it sends.

use std::io;
use std::path::{Path, PathBuf};

use regex::Regex;

/// Why patterns could not be read or compiled.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to read {path}: {source}", path = path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("invalid .dockerignore pattern {pattern:?}: {reason}")]
    Pattern { pattern: String, reason: String },
}

/// How a pattern is tested. moby skips the regular expression for simple patterns, and its
/// shortcut for a leading `**` differs from the expression (`**.md` matches `a/b.md`).
#[derive(Debug, Clone)]
enum Test {
    Exact,
    /// A pattern ending in `**`: the text before it.
    Prefix(String),
    /// A pattern starting with `**` and no other wildcard: the text after it.
    Suffix(String),
    Regex(Regex),
}

/// One compiled pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// The cleaned pattern, without its `!`.
    text: String,
    exclusion: bool,
    test: Test,
}

impl Pattern {
    /// The cleaned pattern text, without the `!` of an exception.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// True for a `!pattern` exception (it re-includes what earlier patterns excluded).
    pub fn exclusion(&self) -> bool {
        self.exclusion
    }

    fn matches(&self, path: &str) -> bool {
        match &self.test {
            Test::Exact => path == self.text,
            Test::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Test::Suffix(suffix) => {
                path.ends_with(suffix.as_str()) || suffix.strip_prefix('/') == Some(path)
            }
            Test::Regex(re) => re.is_match(path),
        }
    }
}

/// An ordered set of patterns.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    patterns: Vec<Pattern>,
}

impl Matcher {
    /// Compiles `patterns` (as [`parse`] returns them); blank ones are skipped.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, Error> {
        let mut compiled = Vec::new();
        for raw in patterns {
            let raw = raw.as_ref().trim();
            if raw.is_empty() {
                continue;
            }
            let cleaned = clean(raw);
            let (exclusion, text) = match cleaned.strip_prefix('!') {
                Some("") => return Err(bad(raw, "illegal exclusion pattern: \"!\"")),
                Some(rest) => (true, rest.to_owned()),
                None => (false, cleaned),
            };
            validate(&text).map_err(|reason| bad(raw, reason))?;
            let test = compile(&text).map_err(|e| bad(raw, &e.to_string()))?;
            compiled.push(Pattern {
                text,
                exclusion,
                test,
            });
        }
        Ok(Self { patterns: compiled })
    }

    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// True when `path` (relative to the context, `/`-separated) is excluded: the last
    /// pattern matching it or one of its parent directories decides.
    pub fn matches_or_parent_matches(&self, path: &str) -> bool {
        let parent = dir(path);
        let parents: Vec<&str> = parent.split('/').collect();
        let mut matched = false;
        for pattern in &self.patterns {
            if pattern.exclusion != matched {
                continue;
            }
            let hit = pattern.matches(path)
                || (parent != "."
                    && (1..=parents.len()).any(|n| pattern.matches(&parents[..n].join("/"))));
            if hit {
                matched = !pattern.exclusion;
            }
        }
        matched
    }
}

fn bad(pattern: &str, reason: &str) -> Error {
    Error::Pattern {
        pattern: pattern.to_owned(),
        reason: reason.to_owned(),
    }
}

/// Reads a `.dockerignore` file's patterns: `#` comment lines and blank lines are dropped, a
/// first-line BOM is removed, each pattern is trimmed and cleaned, a leading `/` is dropped.
pub fn parse(content: &str) -> Vec<String> {
    let content = content.strip_prefix('\u{feff}').unwrap_or(content);
    let mut out = Vec::new();
    for line in content.lines() {
        if line.starts_with('#') {
            continue;
        }
        let mut pattern = line.trim();
        if pattern.is_empty() {
            continue;
        }
        let invert = pattern.starts_with('!');
        if invert {
            pattern = pattern[1..].trim();
        }
        let mut cleaned = if pattern.is_empty() {
            String::new()
        } else {
            clean(pattern)
        };
        if cleaned.len() > 1 && cleaned.starts_with('/') {
            cleaned.remove(0);
        }
        out.push(if invert {
            format!("!{cleaned}")
        } else {
            cleaned
        });
    }
    out
}

/// The patterns for a build: `<Dockerfile>.dockerignore` next to `dockerfile` if it exists,
/// else `<context>/.dockerignore`; `None` when neither exists.
pub fn read_patterns(
    context: &Path,
    dockerfile: Option<&Path>,
) -> Result<Option<Vec<String>>, Error> {
    let specific = dockerfile.and_then(|df| {
        let name = df.file_name()?.to_str()?;
        Some(df.with_file_name(format!("{name}.dockerignore")))
    });
    let candidates = specific.into_iter().chain([context.join(".dockerignore")]);
    for path in candidates {
        match std::fs::read(&path) {
            Ok(bytes) => return Ok(Some(parse(&String::from_utf8_lossy(&bytes)))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => return Err(Error::Io { path, source }),
        }
    }
    Ok(None)
}

/// Go's `filepath.Clean` for `/`-separated paths.
pub fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            ".." if rooted => {}
            _ => parts.push(part),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

/// Go's `filepath.Dir`.
fn dir(path: &str) -> String {
    match path.rfind('/') {
        Some(i) => clean(&path[..=i]),
        None => ".".to_owned(),
    }
}

/// The checks `filepath.Match` makes before matching: escapes must escape something and every
/// `[` class must hold at least one item and be closed.
fn validate(pattern: &str) -> Result<(), &'static str> {
    const BAD: &str = "syntax error in pattern";
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next().ok_or(BAD)?;
            }
            '[' => {
                chars.next_if_eq(&'^');
                let mut items = 0;
                loop {
                    match chars.next().ok_or(BAD)? {
                        ']' if items > 0 => break,
                        ']' | '-' => return Err(BAD),
                        '\\' => {
                            chars.next().ok_or(BAD)?;
                        }
                        _ => {}
                    }
                    items += 1;
                    if chars.next_if_eq(&'-').is_some() {
                        match chars.next().ok_or(BAD)? {
                            ']' | '-' => return Err(BAD),
                            '\\' => {
                                chars.next().ok_or(BAD)?;
                            }
                            _ => {}
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// How moby classifies a pattern: exact text, a `**` prefix or suffix shortcut, or else a
/// regular expression.
fn compile(pattern: &str) -> Result<Test, regex::Error> {
    let (re, kind) = translate(pattern);
    Ok(match kind {
        Kind::Exact => Test::Exact,
        Kind::Prefix => Test::Prefix(pattern.strip_suffix("**").unwrap_or(pattern).to_owned()),
        Kind::Suffix => Test::Suffix(pattern.strip_prefix("**").unwrap_or(pattern).to_owned()),
        Kind::Regex => Test::Regex(Regex::new(&re)?),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Exact,
    Prefix,
    Suffix,
    Regex,
}

/// moby's translation of a pattern to an anchored regular expression, and its classification
/// (any wildcard, escape or class makes it a regular expression; `**` at the end of otherwise
/// plain text is a prefix test, `**` at the start a suffix test unless a wildcard follows).
fn translate(pattern: &str) -> (String, Kind) {
    let mut re = String::from("^");
    let mut kind = Kind::Exact;
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    let mut first = true;
    while let Some(c) = chars.next() {
        match c {
            '*' if !in_class && chars.peek() == Some(&'*') => {
                chars.next();
                chars.next_if_eq(&'/');
                if chars.peek().is_some() {
                    re.push_str("(.*/)?");
                    kind = Kind::Regex;
                } else if kind == Kind::Exact {
                    kind = Kind::Prefix;
                } else {
                    re.push_str(".*");
                    kind = Kind::Regex;
                }
                if first {
                    kind = Kind::Suffix;
                }
            }
            '*' if !in_class => {
                re.push_str("[^/]*");
                kind = Kind::Regex;
            }
            '?' if !in_class => {
                re.push_str("[^/]");
                kind = Kind::Regex;
            }
            '\\' => {
                re.push('\\');
                re.extend(chars.next());
                kind = Kind::Regex;
            }
            '[' if !in_class => {
                in_class = true;
                re.push('[');
                kind = Kind::Regex;
            }
            ']' if in_class => {
                in_class = false;
                re.push(']');
            }
            '[' | '&' | '~' if in_class => {
                re.push('\\');
                re.push(c);
            }
            '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$' if !in_class => {
                re.push('\\');
                re.push(c);
            }
            _ => re.push(c),
        }
        first = false;
    }
    re.push('$');
    (re, kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_like_go() {
        assert_eq!(clean("./a/../b/"), "b");
        assert_eq!(clean("/../x"), "/x");
        assert_eq!(clean("../../x"), "../../x");
        assert_eq!(clean(""), ".");
        assert_eq!(dir("a/b/c"), "a/b");
        assert_eq!(dir("a"), ".");
    }

    #[test]
    fn regex_translation() {
        assert_eq!(translate("a*.go"), (r"^a[^/]*\.go$".into(), Kind::Regex));
        assert_eq!(translate("**/x*"), ("^(.*/)?x[^/]*$".into(), Kind::Regex));
        assert_eq!(translate("x/*/**"), ("^x/[^/]*/.*$".into(), Kind::Regex));
        assert_eq!(translate("[a-c]?"), ("^[a-c][^/]$".into(), Kind::Regex));
        assert_eq!(translate("a.b").1, Kind::Exact);
        assert_eq!(translate("x/**").1, Kind::Prefix);
        assert_eq!(translate("**/x").1, Kind::Suffix);
        assert_eq!(translate("**").1, Kind::Suffix);
    }

    #[test]
    fn malformed_patterns() {
        for bad in ["[", "[]", "a\\", "[a-]", "!"] {
            assert!(Matcher::new(&[bad]).is_err(), "{bad}");
        }
        assert!(Matcher::new(&["[^a]b", "\\*x"]).is_ok());
    }
}
