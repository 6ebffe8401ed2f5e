//! Go `filepath.Match` syntax for one path component: `*`, `?`, `[...]`
//! classes with ranges and `^` negation, `\` escapes.

/// One parsed element of a pattern.
#[derive(Debug, Clone)]
enum Token {
    Literal(char),
    AnyChar,
    AnySeq,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// A validated `filepath.Match` pattern.
#[derive(Debug, Clone)]
pub(crate) struct Glob {
    tokens: Vec<Token>,
}

/// Marker for Go's `ErrBadPattern`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadPattern;

/// Whether `s` contains a character that makes it a pattern rather than a
/// literal name (BuildKit's check before wildcard expansion).
pub(crate) fn has_meta(s: &str) -> bool {
    s.contains(['*', '?', '[', '\\'])
}

impl Glob {
    /// Parses and fully validates `pattern`, as Go does before matching.
    pub(crate) fn parse(pattern: &str) -> Result<Self, BadPattern> {
        let mut chars = pattern.chars().peekable();
        let mut tokens = Vec::new();
        while let Some(c) = chars.next() {
            let token = match c {
                '*' => Token::AnySeq,
                '?' => Token::AnyChar,
                '\\' => Token::Literal(chars.next().ok_or(BadPattern)?),
                '[' => parse_class(&mut chars)?,
                other => Token::Literal(other),
            };
            tokens.push(token);
        }
        Ok(Self { tokens })
    }

    /// Whether `name` matches the whole pattern; `*` and `?` never match `/`.
    pub(crate) fn matches(&self, name: &str) -> bool {
        let name: Vec<char> = name.chars().collect();
        match_from(&self.tokens, &name)
    }
}

fn parse_class(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<Token, BadPattern> {
    let negated = chars.next_if_eq(&'^').is_some();
    let mut ranges = Vec::new();
    loop {
        if !ranges.is_empty() && chars.next_if_eq(&']').is_some() {
            return Ok(Token::Class { negated, ranges });
        }
        let lo = class_char(chars)?;
        let hi = if chars.next_if_eq(&'-').is_some() {
            class_char(chars)?
        } else {
            lo
        };
        ranges.push((lo, hi));
    }
}

/// One possibly escaped class character; `-` and `]` must be escaped there.
fn class_char(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<char, BadPattern> {
    match chars.next().ok_or(BadPattern)? {
        '-' | ']' => Err(BadPattern),
        '\\' => chars.next().ok_or(BadPattern),
        c => Ok(c),
    }
}

/// Iterative matcher with single-star backtracking (linear in practice).
fn match_from(tokens: &[Token], name: &[char]) -> bool {
    let (mut t, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match tokens.get(t) {
            Some(Token::AnySeq) => {
                star = Some((t, n));
                t += 1;
                continue;
            }
            Some(tok) if matches_one(tok, name[n]) => {
                t += 1;
                n += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((st, sn)) if name[sn] != '/' => {
                star = Some((st, sn + 1));
                t = st + 1;
                n = sn + 1;
            }
            _ => return false,
        }
    }
    tokens[t..].iter().all(|tok| matches!(tok, Token::AnySeq))
}

fn matches_one(token: &Token, c: char) -> bool {
    match token {
        Token::Literal(l) => *l == c,
        Token::AnyChar => c != '/',
        Token::AnySeq => false,
        Token::Class { negated, ranges } => {
            ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{BadPattern, Glob};

    fn m(pattern: &str, name: &str) -> Result<bool, BadPattern> {
        Glob::parse(pattern).map(|g| g.matches(name))
    }

    /// Cases from Go's documented `filepath.Match` behaviour.
    #[test]
    fn go_match_table() {
        let ok = [
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*", "abc", true),
            ("a*", "ab/c", false),
            ("a*/b", "abc/b", true),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false),
            ("a*b?c*x", "abxbbxdbxebxczzx", true),
            ("a*b?c*x", "abxbbxdbxebxczzy", false),
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[e-g]", "abc", false),
            ("ab[^c]", "abc", false),
            ("ab[^b-d]", "abc", false),
            ("ab[^e-g]", "abc", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "ab", false),
            ("a?b", "a☺b", true),
            ("a[^a]b", "a☺b", true),
            ("a???b", "a☺b", false),
            ("a[^a][^a][^a]b", "a☺b", false),
            ("[a-ζ]*", "α", true),
            ("*[a-ζ]", "A", false),
            ("a?b", "a/b", false),
            ("a*b", "a/b", false),
            ("[\\]a]", "]", true),
            ("[\\-]", "-", true),
            ("[x\\-]", "x", true),
            ("[x\\-]", "-", true),
            ("[x\\-]", "z", false),
            ("[\\-x]", "a", false),
            ("*x", "xxx", true),
        ];
        for (pattern, name, want) in ok {
            assert_eq!(m(pattern, name), Ok(want), "Match({pattern:?}, {name:?})");
        }
        for bad in [
            "[]a]", "[-]", "[x-]", "[-x]", "\\", "[a-b-c]", "[", "[^", "[^bc", "a[", "*x\\",
        ] {
            assert_eq!(
                m(bad, "x"),
                Err(BadPattern),
                "pattern {bad:?} must be rejected"
            );
        }
    }
}
