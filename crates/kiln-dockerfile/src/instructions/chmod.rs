//! `--chmod` values: octal (`0755`) or symbolic (`u+x,g-w`), parsed into a typed mode.

/// A `--chmod` mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chmod {
    /// Absolute permission bits (at most `0o7777`).
    Octal(u32),
    /// Symbolic clauses applied in order to each file's current mode.
    Symbolic(Vec<Clause>),
}

/// `[ugoa]*` followed by one or more `[+-=][rwxXst]*` actions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    /// Bit mask of the classes the clause applies to (`0o700`, `0o070`, `0o007`; all if none given).
    pub who: u32,
    pub actions: Vec<Action>,
}

/// `+`, `-` or `=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Remove,
    Set,
}

/// One operator with its permission letters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub op: Op,
    /// Letters among `rwxXst`, as written.
    pub perms: String,
}

impl Chmod {
    /// Parses a `--chmod` value, with BuildKit's message on failure.
    pub fn parse(text: &str) -> Result<Self, String> {
        let invalid = || {
            format!(
                "invalid chmod parameter: '{text}'. it should be octal string and between 0 and 07777"
            )
        };
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return match u32::from_str_radix(text, 8) {
                Ok(mode) if mode <= 0o7777 => Ok(Self::Octal(mode)),
                _ => Err(invalid()),
            };
        }
        let clauses: Option<Vec<Clause>> = text.split(',').map(parse_clause).collect();
        clauses.map(Self::Symbolic).ok_or_else(invalid)
    }

    /// The mode a file with `mode` gets (`is_dir` matters for `X`).
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
    fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        self.actions.iter().fold(mode, |m, a| {
            let bits = a.bits(self.who, m, is_dir);
            match a.op {
                Op::Add => m | bits,
                Op::Remove => m & !bits,
                Op::Set => (m & !(self.who | special_bits(self.who))) | bits,
            }
        })
    }
}

impl Action {
    fn bits(&self, who: u32, mode: u32, is_dir: bool) -> u32 {
        let any_exec = mode & 0o111 != 0;
        self.perms.chars().fold(0, |acc, c| {
            acc | match c {
                'r' => 0o444 & who,
                'w' => 0o222 & who,
                'x' => 0o111 & who,
                'X' if is_dir || any_exec => 0o111 & who,
                's' => special_bits(who) & 0o6000,
                't' => 0o1000,
                _ => 0,
            }
        })
    }
}

/// setuid/setgid bits belonging to the classes in `who`.
fn special_bits(who: u32) -> u32 {
    let mut bits = 0;
    if who & 0o700 != 0 {
        bits |= 0o4000;
    }
    if who & 0o070 != 0 {
        bits |= 0o2000;
    }
    bits
}

fn parse_clause(text: &str) -> Option<Clause> {
    let split = text.find(['+', '-', '='])?;
    let (who_text, rest) = text.split_at(split);
    let mut who = 0;
    for c in who_text.chars() {
        who |= match c {
            'u' => 0o700,
            'g' => 0o070,
            'o' => 0o007,
            'a' => 0o777,
            _ => return None,
        };
    }
    let who = if who == 0 { 0o777 } else { who };
    Some(Clause {
        who,
        actions: parse_actions(rest)?,
    })
}

fn parse_actions(mut rest: &str) -> Option<Vec<Action>> {
    let mut actions = Vec::new();
    while let Some(c) = rest.chars().next() {
        let op = match c {
            '+' => Op::Add,
            '-' => Op::Remove,
            '=' => Op::Set,
            _ => return None,
        };
        rest = &rest[1..];
        let end = rest
            .find(|c: char| !"rwxXst".contains(c))
            .unwrap_or(rest.len());
        actions.push(Action {
            op,
            perms: rest[..end].to_owned(),
        });
        rest = &rest[end..];
    }
    (!actions.is_empty()).then_some(actions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_modes() {
        assert_eq!(Chmod::parse("755"), Ok(Chmod::Octal(0o755)));
        assert_eq!(Chmod::parse("04755"), Ok(Chmod::Octal(0o4755)));
        let err = Chmod::parse("17777").unwrap_err();
        assert_eq!(
            err,
            "invalid chmod parameter: '17777'. it should be octal string and between 0 and 07777"
        );
        assert!(Chmod::parse("0789").is_err());
    }

    #[test]
    fn symbolic_modes_apply_to_files_and_dirs() {
        let m = Chmod::parse("u+x,g-w").unwrap();
        assert_eq!(m.apply(0o664, false), 0o744);
        let m = Chmod::parse("a=rX").unwrap();
        assert_eq!(m.apply(0o600, false), 0o444);
        assert_eq!(m.apply(0o600, true), 0o555);
        let m = Chmod::parse("go-rwx,u+s").unwrap();
        assert_eq!(m.apply(0o755, false), 0o4700);
        assert_eq!(Chmod::parse("+t").unwrap().apply(0o777, true), 0o1777);
    }

    #[test]
    fn malformed_symbolic_modes_are_rejected() {
        for bad in ["", "u", "z+x", "u+x,", "u+q", "755x"] {
            assert!(Chmod::parse(bad).is_err(), "{bad:?} should fail");
        }
    }
}
