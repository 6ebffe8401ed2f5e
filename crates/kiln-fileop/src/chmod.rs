//! `--chmod` values: octal (`0755`) or symbolic (`u+x,g-w`, `a=rX`), the
//! latter applied relative to each source entry's own mode, as BuildKit's
//! copier does (newer Dockerfile frontends accept both forms).

use std::str::FromStr;

use crate::error::Error;

const SETUID: u32 = 0o4000;
const SETGID: u32 = 0o2000;
const STICKY: u32 = 0o1000;

/// A parsed `--chmod` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chmod {
    /// Replaces the permission bits (and setuid/setgid/sticky) outright.
    Octal(u32),
    /// Comma-separated `[ugoa]*[-+=][rwxXst]*|[ugo]` clauses.
    Symbolic(Vec<Clause>),
}

/// One symbolic clause, e.g. `go-w`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    who: u32,
    actions: Vec<(char, Perm)>,
}

/// What a clause's operator applies.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Perm {
    /// `rwxst` letters, plus whether `X` was present.
    Bits { bits: u32, cond_x: bool },
    /// Copy the bits of another class (`u`, `g` or `o`).
    Copy(u32),
}

impl FromStr for Chmod {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || Error::InvalidChmod(s.to_owned());
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            let mode = u32::from_str_radix(s, 8).map_err(|_| bad())?;
            return if mode > 0o7777 {
                Err(bad())
            } else {
                Ok(Self::Octal(mode))
            };
        }
        let clauses = s.split(',').map(parse_clause).collect::<Option<Vec<_>>>();
        clauses
            .filter(|c| !c.is_empty())
            .map(Self::Symbolic)
            .ok_or_else(bad)
    }
}

impl Chmod {
    /// The mode (permission and special bits) an entry with `mode` gets;
    /// `is_dir` matters for `X`.
    pub fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        match self {
            Self::Octal(m) => *m,
            Self::Symbolic(clauses) => clauses
                .iter()
                .fold(mode & 0o7777, |m, c| c.apply(m, is_dir)),
        }
    }
}

impl Clause {
    fn apply(&self, mut mode: u32, is_dir: bool) -> u32 {
        for (op, perm) in &self.actions {
            let bits = perm.resolve(mode, is_dir) & self.who;
            mode = match op {
                '+' => mode | bits,
                '-' => mode & !bits,
                _ => (mode & !self.who) | bits,
            };
        }
        mode
    }
}

impl Perm {
    fn resolve(&self, mode: u32, is_dir: bool) -> u32 {
        match *self {
            Self::Bits { bits, cond_x } => {
                let x = cond_x && (is_dir || mode & 0o111 != 0);
                bits | if x { 0o111 } else { 0 }
            }
            Self::Copy(class) => {
                let rwx = (mode & class) >> class.trailing_zeros();
                rwx * 0o111
            }
        }
    }
}

/// Parses one clause; `None` if malformed.
fn parse_clause(text: &str) -> Option<Clause> {
    let split = text.find(['+', '-', '='])?;
    let (who_text, rest) = text.split_at(split);
    let mut who = 0;
    for c in who_text.chars() {
        who |= who_bits(c)?;
    }
    if who == 0 {
        who = 0o7777;
    }
    let mut actions = Vec::new();
    let mut chars = rest.chars().peekable();
    while let Some(op) = chars.next() {
        let mut letters = String::new();
        while let Some(c) = chars.next_if(|c| !matches!(c, '+' | '-' | '=')) {
            letters.push(c);
        }
        actions.push((op, parse_perm(&letters)?));
    }
    Some(Clause { who, actions })
}

fn who_bits(c: char) -> Option<u32> {
    match c {
        'u' => Some(0o700 | SETUID),
        'g' => Some(0o070 | SETGID),
        'o' => Some(0o007 | STICKY),
        'a' => Some(0o7777),
        _ => None,
    }
}

fn parse_perm(letters: &str) -> Option<Perm> {
    match letters {
        "u" => return Some(Perm::Copy(0o700)),
        "g" => return Some(Perm::Copy(0o070)),
        "o" => return Some(Perm::Copy(0o007)),
        _ => {}
    }
    let mut bits = 0;
    let mut cond_x = false;
    for c in letters.chars() {
        match c {
            'r' => bits |= 0o444,
            'w' => bits |= 0o222,
            'x' => bits |= 0o111,
            'X' => cond_x = true,
            's' => bits |= SETUID | SETGID,
            't' => bits |= STICKY,
            _ => return None,
        }
    }
    Some(Perm::Bits { bits, cond_x })
}

#[cfg(test)]
mod tests {
    use super::Chmod;

    fn apply(spec: &str, mode: u32, is_dir: bool) -> u32 {
        spec.parse::<Chmod>().unwrap().apply(mode, is_dir)
    }

    #[test]
    fn octal_replaces_and_rejects_out_of_range() {
        assert_eq!(apply("755", 0o600, false), 0o755);
        assert_eq!(apply("04755", 0o600, false), 0o4755);
        assert!("10000".parse::<Chmod>().is_err());
        assert!("999".parse::<Chmod>().is_err());
        assert!("".parse::<Chmod>().is_err());
    }

    /// Expectations follow chmod(1)'s symbolic rules, which BuildKit's
    /// copier mirrors: relative to the entry's mode, `X` only for
    /// directories or already-executable files.
    #[test]
    fn symbolic_is_relative_to_the_source_mode() {
        assert_eq!(apply("u+x", 0o644, false), 0o744);
        assert_eq!(apply("u+x,g-w", 0o664, false), 0o744);
        assert_eq!(apply("a=r", 0o755, false), 0o444);
        assert_eq!(apply("go=", 0o755, true), 0o700);
        assert_eq!(apply("a+X", 0o644, false), 0o644);
        assert_eq!(apply("a+X", 0o744, false), 0o755);
        assert_eq!(apply("a+X", 0o600, true), 0o711);
        assert_eq!(apply("g=u", 0o640, false), 0o660);
        assert_eq!(apply("+x", 0o600, false), 0o711);
        assert_eq!(apply("u+s", 0o755, false), 0o4755);
        assert_eq!(apply("o+t", 0o777, true), 0o1777);
        for bad in ["u+q", "z+x", "u", "u+x,,g-w"] {
            assert!(bad.parse::<Chmod>().is_err(), "{bad} must be rejected");
        }
    }
}
