//! Finding heredoc words (`<<EOF`, `<<-'EOF'`, `3<<EOF`) in an instruction line.
//!
//! BuildKit splits the line with its shell lexer keeping quotes, escapes and unset variables
//! raw, then matches each word against `^(\d*)<<(-?)\s*([^<]*)$`. The lexer glues blanks that
//! follow `<<` onto the word, so `<<  EOF` is one word. A line the lexer rejects (unterminated
//! quote or `${`) has no heredocs at all.

/// A heredoc announced on the instruction line, in order of appearance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Announced {
    pub name: String,
    pub expand: bool,
    pub chomp: bool,
    /// Byte range of the word in the line.
    pub start: usize,
    pub end: usize,
}

/// All heredocs announced in `line`.
pub(super) fn announced(line: &str) -> Vec<Announced> {
    raw_words(line)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(start, end)| {
            let word = line.get(start..end)?;
            let (name, expand, chomp) = match_word(word)?;
            Some(Announced {
                name,
                expand,
                chomp,
                start,
                end,
            })
        })
        .collect()
}

/// Splits a line into raw words (byte ranges), or `None` when the shell lexer would fail.
fn raw_words(line: &str) -> Option<Vec<(usize, usize)>> {
    let mut words = Vec::new();
    let mut chars = line.char_indices().peekable();
    let mut start: Option<usize> = None;
    while let Some((i, c)) = chars.next() {
        if c.is_whitespace() {
            if let Some(s) = start.take() {
                words.push((s, i));
            }
            continue;
        }
        start.get_or_insert(i);
        match c {
            '\\' => {
                chars.next();
            }
            '\'' => skip_until(&mut chars, |c| c == '\'')?,
            '"' => skip_double_quoted(&mut chars)?,
            '$' if chars.peek().map(|&(_, c)| c) == Some('{') => skip_braces(&mut chars)?,
            '<' if chars.peek().map(|&(_, c)| c) == Some('<') => {
                chars.next();
                while chars.next_if(|&(_, c)| c.is_whitespace()).is_some() {}
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        words.push((s, line.len()));
    }
    Some(words)
}

type Chars<'a> = std::iter::Peekable<std::str::CharIndices<'a>>;

fn skip_until(chars: &mut Chars<'_>, stop: impl Fn(char) -> bool) -> Option<()> {
    chars.find(|&(_, c)| stop(c)).map(drop)
}

fn skip_double_quoted(chars: &mut Chars<'_>) -> Option<()> {
    while let Some((_, c)) = chars.next() {
        match c {
            '"' => return Some(()),
            '\\' => {
                chars.next();
            }
            _ => {}
        }
    }
    None
}

/// Skips a `${...}` expansion (nested ones included) after its `$`.
fn skip_braces(chars: &mut Chars<'_>) -> Option<()> {
    let mut depth = 0usize;
    let mut prev = '$';
    for (_, c) in chars.by_ref() {
        match c {
            '{' if prev == '$' => depth += 1,
            '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(());
                }
            }
            _ => {}
        }
        prev = c;
    }
    None
}

/// Matches one raw word against BuildKit's heredoc pattern: `(name, expand, chomp)`.
fn match_word(word: &str) -> Option<(String, bool, bool)> {
    let after_fd = word.trim_start_matches(|c: char| c.is_ascii_digit());
    let after = after_fd.strip_prefix("<<")?;
    let (chomp, after) = match after.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, after),
    };
    let rest = after.trim_start_matches([' ', '\t', '\n', '\x0c', '\r']);
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    let (name, quoted) = delimiter(rest)?;
    Some((name, !quoted, chomp))
}

/// Lexes the delimiter word with quotes and escapes removed; `quoted` when a quote pair was
/// used (no expansion of the body then). More than one word means it is no heredoc.
fn delimiter(raw: &str) -> Option<(String, bool)> {
    let mut name = String::new();
    let mut quoted = false;
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => name.extend(chars.next()),
            '\'' => {
                quoted = true;
                name.extend(chars.by_ref().take_while(|&c| c != '\''));
            }
            '"' => {
                quoted = true;
                double_quoted(&mut chars, &mut name);
            }
            c if c.is_whitespace() => return None,
            c => name.push(c),
        }
    }
    (quoted || !name.is_empty()).then_some((name, quoted))
}

fn double_quoted(chars: &mut std::str::Chars<'_>, name: &mut String) {
    while let Some(c) = chars.next() {
        match c {
            '"' => return,
            '\\' => match chars.next() {
                Some(next @ ('"' | '\\' | '$')) => name.push(next),
                Some(next) => {
                    name.push('\\');
                    name.push(next);
                }
                None => name.push('\\'),
            },
            c => name.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(line: &str) -> Vec<(String, bool, bool)> {
        announced(line)
            .into_iter()
            .map(|a| (a.name, a.expand, a.chomp))
            .collect()
    }

    fn one(name: &str, expand: bool, chomp: bool) -> Vec<(String, bool, bool)> {
        vec![(name.to_owned(), expand, chomp)]
    }

    #[test]
    fn delimiter_forms() {
        assert_eq!(names("RUN <<EOF"), one("EOF", true, false));
        assert_eq!(names("RUN <<-EOF"), one("EOF", true, true));
        assert_eq!(names("RUN <<'EOF'"), one("EOF", false, false));
        assert_eq!(names("RUN <<\"EOF\""), one("EOF", false, false));
        assert_eq!(names("RUN 3<<EOF"), one("EOF", true, false));
        assert_eq!(names("RUN <<  EOF  > foo"), one("EOF", true, false));
        assert_eq!(names("RUN << -EOF"), one("-EOF", true, false));
        assert_eq!(names("RUN <<eo'f'"), one("eof", false, false));
        assert_eq!(names("RUN <<eo\\'f"), one("eo'f", true, false));
        assert_eq!(names("RUN <<'e'o\\'f"), one("eo'f", false, false));
        assert_eq!(names("RUN <<'one two'"), one("one two", false, false));
        assert_eq!(names("RUN <<$EOF"), one("$EOF", true, false));
    }

    #[test]
    fn not_heredocs() {
        for line in [
            "RUN \"<<EOF\"",
            "RUN '<<EOF'",
            "RUN a<<EOF",
            "RUN <<",
            "RUN <<<EOF",
            "RUN <<EOF '",
        ] {
            assert!(names(line).is_empty(), "{line}");
        }
    }

    #[test]
    fn several_on_one_line() {
        let found = announced("COPY <<A <<B /dst");
        let got: Vec<_> = found
            .iter()
            .map(|a| (a.name.as_str(), a.start, a.end))
            .collect();
        assert_eq!(got, vec![("A", 5, 8), ("B", 9, 12)]);
    }
}
