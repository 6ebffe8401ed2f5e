//! Shell patterns of `${V#p}`, `${V%p}` and `${V/p/r}`, matched as BuildKit does.
//!
//! BuildKit turns the pattern into a Go regular expression: `*` is `.*` (lazy
//! for the shortest-match operators), `?` is `.`, a backslash quotes `*`, `?`
//! or `\`, and every other character (brackets included) is literal. Because
//! `.` does not match a newline, neither do `*` and `?`. The same translation
//! onto the `regex` crate, which shares Go's leftmost-first semantics, gives
//! the same matches.

use regex::Regex;

use crate::chars::{is_digit, is_letter};

/// The leading byte-order mark that Go's `text/scanner` drops from its input.
const BOM: char = '\u{FEFF}';

/// What Go prints for a rune it could not read (end of input).
const NO_RUNE: char = '\u{FFFD}';

/// Removes the shortest (or, if `greedy`, longest) prefix of `value` matching `pattern`.
pub(crate) fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let re = compile(pattern, greedy, true)?;
    Ok(match re.find(value) {
        Some(m) => value[m.end()..].to_owned(),
        None => value.to_owned(),
    })
}

/// Removes the shortest (or, if `greedy`, longest) suffix of `value` matching `pattern`.
///
/// A regex cannot find the shortest rightmost match, so like BuildKit this
/// reverses both the pattern and the value and trims a prefix instead.
pub(crate) fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let reversed: String = value.chars().rev().collect();
    let trimmed = trim_prefix(&reverse_pattern(pattern), &reversed, greedy)?;
    Ok(trimmed.chars().rev().collect())
}

/// Replaces the first (or every) longest match of `pattern` in `value`.
pub(crate) fn replace(pattern: &str, value: &str, repl: &str, all: bool) -> Result<String, String> {
    let re = compile(pattern, true, false)?;
    if all {
        return Ok(replace_all(&re, value, repl));
    }
    Ok(match re.find(value) {
        Some(m) => format!("{}{repl}{}", &value[..m.start()], &value[m.end()..]),
        None => value.to_owned(),
    })
}

/// Translates a shell pattern into a regex; the error text is BuildKit's.
fn compile(pattern: &str, greedy: bool, anchored: bool) -> Result<Regex, String> {
    let source = translate(pattern, greedy, anchored)
        .map_err(|e| format!("invalid pattern ({pattern}) in substitution: {e}"))?;
    Regex::new(&source).map_err(|e| format!("invalid pattern ({pattern}) in substitution: {e}"))
}

/// The regex source for `pattern`.
fn translate(pattern: &str, greedy: bool, anchored: bool) -> Result<String, String> {
    let mut out = String::from(if anchored { "^" } else { "" });
    let star = if greedy { ".*" } else { ".*?" };
    let body = pattern.strip_prefix(BOM).unwrap_or(pattern);
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => out.push_str(star),
            '?' => out.push('.'),
            // `\}` and `\/` were escaped only for the `${}` syntax: drop the backslash.
            '\\' if matches!(chars.peek(), Some('}' | '/')) => {}
            '\\' => match chars.next() {
                Some(quoted @ ('*' | '?' | '\\')) => push_literal(&mut out, quoted),
                other => return Err(format!("invalid escape '\\{}'", other.unwrap_or(NO_RUNE))),
            },
            _ => push_literal(&mut out, c),
        }
    }
    Ok(out)
}

fn push_literal(out: &mut String, c: char) {
    let mut buf = [0; 4];
    out.push_str(&regex::escape(c.encode_utf8(&mut buf)));
}

/// Reverses a pattern character by character, keeping each `\x` pair in order.
fn reverse_pattern(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut units: Vec<&[char]> = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        let len = if chars[i] == '\\' && i + 1 < chars.len() {
            2
        } else {
            1
        };
        units.push(&chars[i..i + len]);
        i += len;
    }
    units.iter().rev().flat_map(|unit| unit.iter()).collect()
}

/// Go's `Regexp.ReplaceAllString`: how it steps past empty matches, and its
/// `$` template in the replacement.
fn replace_all(re: &Regex, src: &str, repl: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut last_end = 0;
    let mut search = 0;
    while search <= src.len() {
        let Some(m) = re.find_at(src, search) else {
            break;
        };
        out.push_str(&src[last_end..m.start()]);
        // No replacement for an empty match right after the previous match.
        if m.end() > last_end || m.start() == 0 {
            expand_template(repl, m.as_str(), &mut out);
        }
        last_end = m.end();
        let width = src[search..].chars().next().map_or(0, char::len_utf8);
        search = if search + width > m.end() {
            search + width
        } else if search + 1 > m.end() {
            search + 1
        } else {
            m.end()
        };
    }
    out.push_str(&src[last_end..]);
    out
}

/// Go's `Regexp.Expand` for a regex without groups: `$0` or `${0}` is the
/// match, `$$` is `$`, any other reference is empty, a malformed one literal.
fn expand_template(template: &str, matched: &str, out: &mut String) {
    let mut rest = template;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
            continue;
        }
        match template_ref(rest) {
            Some((name, after)) => {
                if name == "0" {
                    out.push_str(matched);
                }
                rest = after;
            }
            None => out.push('$'),
        }
    }
    out.push_str(rest);
}

/// Splits a `name` or `{name}` reference off the text after a `$`.
fn template_ref(text: &str) -> Option<(&str, &str)> {
    let (braced, body) = match text.strip_prefix('{') {
        Some(body) => (true, body),
        None => (false, text),
    };
    let len = body
        .find(|c: char| !is_letter(c) && !is_digit(c) && c != '_')
        .unwrap_or(body.len());
    if len == 0 {
        return None;
    }
    let (name, after) = body.split_at(len);
    if !braced {
        return Some((name, after));
    }
    after.strip_prefix('}').map(|after| (name, after))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translation_matches_buildkit_regexes() {
        assert_eq!(translate("*", true, true).unwrap(), "^.*");
        assert_eq!(translate("*", false, true).unwrap(), "^.*?");
        assert_eq!(translate("?", true, true).unwrap(), "^.");
        assert_eq!(translate("\\*", true, true).unwrap(), "^\\*");
        assert_eq!(translate("a\\}b\\/", true, false).unwrap(), "a\\}b/");
        assert_eq!(translate("[x]", true, false).unwrap(), "\\[x\\]");
    }

    #[test]
    fn invalid_escapes_are_rejected() {
        for pattern in ["\\", "\\x", "\\\\\\"] {
            assert!(translate(pattern, true, true).is_err(), "{pattern:?}");
        }
        assert_eq!(
            translate("\\", true, true).unwrap_err(),
            "invalid escape '\\\u{FFFD}'"
        );
    }

    #[test]
    fn reversal_keeps_escape_pairs() {
        for (pattern, expected) in [
            ("a\\*c", "c\\*a"),
            ("\\\\\\ab", "b\\a\\\\"),
            ("ab\\", "\\ba"),
            ("👽\\🚀🖖", "🖖\\🚀👽"),
            ("\\\\b", "b\\\\"),
        ] {
            assert_eq!(reverse_pattern(pattern), expected, "{pattern:?}");
        }
    }

    #[test]
    fn template_follows_go_expand() {
        let mut out = String::new();
        expand_template("<$0|${0}|$$|$1|$x|${|$-|$>", "M", &mut out);
        assert_eq!(out, "<M|M|$|||${|$-|$>");
    }
}
