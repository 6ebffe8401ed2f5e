//! The exec-form JSON array, decoded the way Go's `encoding/json` does it for BuildKit.
//!
//! BuildKit only takes the exec form when the whole text is one valid JSON document; a valid
//! array holding anything but strings is an error, any invalid JSON falls back to shell form.
//! Written by hand (no recursion) so nesting depth, lone surrogates and number overflow behave
//! like Go rather than like another JSON library.

/// Go's `encoding/json` nesting limit.
const MAX_DEPTH: usize = 10_000;

/// One decoded array element and its byte range (quotes included) in the parsed text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Element {
    pub value: String,
    pub start: usize,
    pub end: usize,
}

/// How the arguments text reads as a JSON array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum JsonArray {
    Strings(Vec<Element>),
    /// Valid JSON, but an element is not a string: BuildKit rejects the instruction.
    NotStrings,
    /// Not (decodable) JSON: the caller falls back to the shell form.
    Invalid,
}

/// Decodes `text` (arguments already trimmed) as a JSON array of strings.
pub(super) fn parse_array(text: &str) -> JsonArray {
    let trimmed = text.trim_start();
    if !trimmed.starts_with('[') {
        return JsonArray::Invalid;
    }
    let lead = text.len() - trimmed.len();
    let mut reader = Reader {
        text,
        pos: lead,
        overflow: false,
    };
    match reader.top_array() {
        Some(_) if reader.overflow => JsonArray::Invalid,
        Some(Some(elements)) => JsonArray::Strings(elements),
        Some(None) => JsonArray::NotStrings,
        None => JsonArray::Invalid,
    }
}

struct Reader<'a> {
    text: &'a str,
    pos: usize,
    /// A number did not fit a float64: Go reports an unmarshal error (so: shell form).
    overflow: bool,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        self.skip_ws();
        (self.peek() == Some(byte)).then(|| self.pos += 1)
    }

    /// `Some(Some(strings))`, `Some(None)` for valid non-string content, `None` if invalid.
    fn top_array(&mut self) -> Option<Option<Vec<Element>>> {
        self.eat(b'[')?;
        let mut elements = Some(Vec::new());
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
        } else {
            loop {
                self.skip_ws();
                if self.peek() == Some(b'"') {
                    let start = self.pos;
                    let value = self.string()?;
                    let end = self.pos;
                    if let Some(list) = elements.as_mut() {
                        list.push(Element { value, start, end });
                    }
                } else {
                    self.value(1)?;
                    elements = None;
                }
                self.skip_ws();
                match self.peek() {
                    Some(b',') => self.pos += 1,
                    Some(b']') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        self.skip_ws();
        (self.pos == self.text.len()).then_some(elements)
    }

    /// Validates one value of any kind without recursion; `depth` counts enclosing containers.
    fn value(&mut self, depth: usize) -> Option<()> {
        let mut stack: Vec<u8> = Vec::new();
        loop {
            if self.scalar_or_open(&mut stack, depth)? {
                continue;
            }
            if self.close_containers(&mut stack)? {
                return Some(());
            }
        }
    }

    /// After a value: closes finished containers; `true` once nothing is left open, `false`
    /// when a `,` asks for the next value.
    fn close_containers(&mut self, stack: &mut Vec<u8>) -> Option<bool> {
        loop {
            let Some(&top) = stack.last() else {
                return Some(true);
            };
            self.skip_ws();
            match (top, self.peek()?) {
                (b'[', b',') => {
                    self.pos += 1;
                    return Some(false);
                }
                (b'{', b',') => {
                    self.pos += 1;
                    self.key()?;
                    return Some(false);
                }
                (b'[', b']') | (b'{', b'}') => {
                    self.pos += 1;
                    stack.pop();
                }
                _ => return None,
            }
        }
    }

    /// Reads a scalar or an empty container (`false`), or opens a container whose first
    /// value comes next (`true`).
    fn scalar_or_open(&mut self, stack: &mut Vec<u8>, depth: usize) -> Option<bool> {
        self.skip_ws();
        match self.peek()? {
            b'"' => self.string().map(|_| false),
            b'-' | b'0'..=b'9' => self.number().map(|()| false),
            b't' => self.literal("true").map(|()| false),
            b'f' => self.literal("false").map(|()| false),
            b'n' => self.literal("null").map(|()| false),
            open @ (b'[' | b'{') => {
                if depth + stack.len() + 1 > MAX_DEPTH {
                    return None;
                }
                self.pos += 1;
                self.skip_ws();
                let close = if open == b'[' { b']' } else { b'}' };
                if self.peek() == Some(close) {
                    self.pos += 1;
                    return Some(false);
                }
                stack.push(open);
                if open == b'{' {
                    self.key()?;
                }
                Some(true)
            }
            _ => None,
        }
    }

    /// An object key and its colon.
    fn key(&mut self) -> Option<()> {
        self.skip_ws();
        if self.peek() != Some(b'"') {
            return None;
        }
        self.string()?;
        self.eat(b':')
    }

    fn literal(&mut self, word: &str) -> Option<()> {
        let rest = self.text.get(self.pos..)?;
        rest.starts_with(word).then(|| self.pos += word.len())
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Option<()> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek()? {
            b'0' => self.pos += 1,
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            (self.digits() > 0).then_some(())?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            (self.digits() > 0).then_some(())?;
        }
        let parsed: f64 = self.text.get(start..self.pos)?.parse().ok()?;
        if parsed.is_infinite() {
            self.overflow = true;
        }
        Some(())
    }

    /// Decodes a string starting at the opening quote.
    fn string(&mut self) -> Option<String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            let rest = self.text.get(self.pos..)?;
            let c = rest.chars().next()?;
            self.pos += c.len_utf8();
            match c {
                '"' => return Some(out),
                '\\' => self.escape(&mut out)?,
                c if (c as u32) < 0x20 => return None,
                c => out.push(c),
            }
        }
    }

    fn escape(&mut self, out: &mut String) -> Option<()> {
        let c = self.peek()?;
        self.pos += 1;
        let decoded = match c {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => return self.unicode_escape(out),
            _ => return None,
        };
        out.push(decoded);
        Some(())
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let digits = self.text.get(at..at + 4)?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(digits, 16).ok()
    }

    /// `\uXXXX` (after the `u`); a surrogate pairs with a following `\uXXXX` when it can,
    /// otherwise it becomes U+FFFD, as Go does.
    fn unicode_escape(&mut self, out: &mut String) -> Option<()> {
        let first = self.hex4(self.pos)?;
        self.pos += 4;
        if !(0xD800..0xE000).contains(&first) {
            out.push(char::from_u32(first).unwrap_or('\u{fffd}'));
            return Some(());
        }
        let paired = self
            .text
            .get(self.pos..)
            .filter(|rest| rest.starts_with("\\u"))
            .and_then(|_| self.hex4(self.pos + 2))
            .filter(|second| {
                (0xD800..0xDC00).contains(&first) && (0xDC00..0xE000).contains(second)
            });
        match paired {
            Some(second) => {
                let code = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
                out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                self.pos += 6;
            }
            None => out.push('\u{fffd}'),
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(text: &str) -> Option<Vec<String>> {
        match parse_array(text) {
            JsonArray::Strings(list) => Some(list.into_iter().map(|e| e.value).collect()),
            _ => None,
        }
    }

    #[test]
    fn valid_string_arrays() {
        assert_eq!(strings("[]"), Some(vec![]));
        assert_eq!(
            strings("[ \"a\",\t\"b\" ]"),
            Some(vec!["a".into(), "b".into()])
        );
        assert_eq!(
            strings(r#"["\u00e9\ud83d\ude00\/"]"#),
            Some(vec!["é😀/".into()])
        );
        assert_eq!(strings(r#"["\ud800x"]"#), Some(vec!["\u{fffd}x".into()]));
    }

    #[test]
    fn non_string_elements_are_rejected() {
        for text in [
            r#"["a",1]"#,
            r#"["a",{"c":[1,{}]}]"#,
            "[null]",
            "[[\"x\"]]",
            "[true]",
        ] {
            assert_eq!(parse_array(text), JsonArray::NotStrings, "{text}");
        }
    }

    #[test]
    fn invalid_json_falls_back() {
        for text in [
            "['a']",
            "[\"a\"",
            "[\"a\"] x",
            "[1e400]",
            "[01]",
            "[\"\t\"]",
            "[\"a\",]",
            "x",
        ] {
            assert_eq!(parse_array(text), JsonArray::Invalid, "{text}");
        }
    }

    #[test]
    fn deep_nesting_does_not_recurse() {
        let deep = format!("[{}{}]", "[".repeat(20_000), "]".repeat(20_000));
        assert_eq!(parse_array(&deep), JsonArray::Invalid);
        let ok = format!("[{}{}]", "[".repeat(100), "]".repeat(100));
        assert_eq!(parse_array(&ok), JsonArray::NotStrings);
    }

    #[test]
    fn element_offsets_cover_quotes() {
        let JsonArray::Strings(list) = parse_array("[ \"ab\" ]") else {
            panic!("not strings")
        };
        assert_eq!((list[0].start, list[0].end), (2, 6));
    }
}
