//! Shell glob with Go `path.Match` semantics, used by Docker's
//! `reference=` image filter: `*` and `?` never match `/`.
//!
//! Like Go, the pattern is split into star-prefixed chunks and each chunk
//! takes its leftmost match, so matching is polynomial whatever the input.

/// Matches `name` against `pattern`; `None` when the pattern is malformed.
pub fn path_match(pattern: &str, name: &str) -> Option<bool> {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    validate(&p)?;
    Some(match_chunks(&p, &n))
}

/// Rejects unterminated classes and trailing escapes up front, so a bad
/// pattern is reported whatever the name.
fn validate(p: &[char]) -> Option<()> {
    let mut i = 0;
    while let Some(&c) = p.get(i) {
        i = match c {
            '\\' => {
                p.get(i + 1)?;
                i + 2
            }
            '[' => parse_class(p, i + 1, '\0')?.1,
            _ => i + 1,
        };
    }
    Some(())
}

fn match_chunks(mut p: &[char], mut n: &[char]) -> bool {
    while !p.is_empty() {
        let (star, chunk, rest) = scan_chunk(p);
        p = rest;
        if star && chunk.is_empty() {
            return !n.contains(&'/');
        }
        match match_chunk(chunk, n) {
            Some(t) if t.is_empty() || !p.is_empty() => {
                n = t;
                continue;
            }
            _ => {}
        }
        if !star {
            return false;
        }
        match star_positions(chunk, n, p.is_empty()) {
            Some(t) => n = t,
            None => return false,
        }
    }
    n.is_empty()
}

/// After a `*`, tries the chunk at each later position up to the next `/`.
fn star_positions<'a>(chunk: &[char], n: &'a [char], last: bool) -> Option<&'a [char]> {
    let mut i = 0;
    while i < n.len() && n[i] != '/' {
        if let Some(t) = match_chunk(chunk, &n[i + 1..]) {
            if !last || t.is_empty() {
                return Some(t);
            }
        }
        i += 1;
    }
    None
}

/// Splits off leading stars and the chunk up to the next unescaped,
/// unbracketed `*`.
fn scan_chunk(p: &[char]) -> (bool, &[char], &[char]) {
    let start = p.iter().take_while(|&&c| c == '*').count();
    let p = &p[start..];
    let mut in_class = false;
    let mut i = 0;
    while let Some(&c) = p.get(i) {
        match c {
            '\\' => i += 1,
            '[' => in_class = true,
            ']' => in_class = false,
            '*' if !in_class => break,
            _ => {}
        }
        i += 1;
    }
    let end = i.min(p.len());
    (start > 0, &p[..end], &p[end..])
}

/// Matches `chunk` (no stars) against a prefix of `n`, returning the rest.
fn match_chunk<'a>(chunk: &[char], mut n: &'a [char]) -> Option<&'a [char]> {
    let mut i = 0;
    while i < chunk.len() {
        let (&c, rest) = n.split_first()?;
        let (used, hit) = match chunk[i] {
            '?' => (1, c != '/'),
            '\\' => (2, chunk.get(i + 1) == Some(&c)),
            '[' => {
                let (hit, end) = parse_class(chunk, i + 1, c)?;
                (end - i, hit && c != '/')
            }
            lit => (1, lit == c),
        };
        if !hit {
            return None;
        }
        i += used;
        n = rest;
    }
    Some(n)
}

/// Parses a `[...]` class starting after `[`; returns whether `c` is in it
/// and the index just past `]`.
fn parse_class(p: &[char], mut i: usize, c: char) -> Option<(bool, usize)> {
    let negated = p.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    loop {
        if !first && p.get(i)? == &']' {
            return Some((hit != negated, i + 1));
        }
        let (lo, next) = class_char(p, i)?;
        let (hi, next) = if p.get(next) == Some(&'-') {
            class_char(p, next + 1)?
        } else {
            (lo, next)
        };
        if lo > hi {
            return None;
        }
        hit |= lo <= c && c <= hi;
        i = next;
        first = false;
    }
}

fn class_char(p: &[char], i: usize) -> Option<(char, usize)> {
    match p.get(i)? {
        '\\' => Some((*p.get(i + 1)?, i + 2)),
        '-' | ']' => None,
        &ch => Some((ch, i + 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::path_match;

    #[test]
    fn go_path_match_cases() {
        let cases = [
            ("abc", "abc", Some(true)),
            ("*", "abc", Some(true)),
            ("*c", "abc", Some(true)),
            ("a*", "a", Some(true)),
            ("a*", "ab/c", Some(false)),
            ("a*/b", "abc/b", Some(true)),
            ("a*/b", "a/c/b", Some(false)),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", Some(true)),
            ("a*b?c*x", "abxbbxdbxebxczzx", Some(true)),
            ("a*b?c*x", "abxbbxdbxebxczzy", Some(false)),
            ("*", "a/b", Some(false)),
            ("*x", "xxx", Some(true)),
            ("a?c", "abc", Some(true)),
            ("a?c", "a/c", Some(false)),
            ("[a-c]x", "bx", Some(true)),
            ("[^a-c]x", "bx", Some(false)),
            ("[^a-c]x", "dx", Some(true)),
            ("[*]", "*", Some(true)),
            ("a\\*b", "a*b", Some(true)),
            ("a\\*b", "axb", Some(false)),
            ("[", "a", None),
            ("a\\", "a", None),
            ("[z-a]", "a", None),
            ("[]a]", "]", None),
            ("lab/*", "lab/busybox", Some(true)),
        ];
        for (pattern, name, want) in cases {
            assert_eq!(path_match(pattern, name), want, "{pattern} vs {name}");
        }
    }

    #[test]
    fn many_stars_stay_fast() {
        let pattern = "*a".repeat(40) + "b";
        let name = "a".repeat(300);
        assert_eq!(path_match(&pattern, &name), Some(false));
    }
}
