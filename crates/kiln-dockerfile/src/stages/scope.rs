//! What a stage's instructions can see: the variables (image ENV, ARG values, ENV) and the
//! declared ARGs, plus the expander that substitutes them into words.

use std::collections::BTreeSet;

use kiln_shell::{ExpandError, Lexer};

use crate::ast::Span;
use crate::instructions::Spanned;
use crate::{Error, Result};

/// BuildKit's default PATH, set when a base image defines none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The variable scope of a stage at one point (BuildKit's state env plus its build args).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Variables expansion sees, in definition order (a later definition replaces in place).
    pub env: Vec<(String, String)>,
    /// Declared ARGs in declaration order, with their value if they have one.
    pub args: Vec<(String, Option<String>)>,
}

impl Scope {
    /// A scope starting from a base image's ENV, with PATH ensured.
    pub fn from_image_env(env: &[(String, String)]) -> Self {
        let mut scope = Self {
            env: env.to_vec(),
            args: Vec::new(),
        };
        if scope.get("PATH").is_none() {
            scope.env.push(("PATH".into(), DEFAULT_PATH.into()));
        }
        scope
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn set(&mut self, name: &str, value: &str) {
        match self.env.iter_mut().find(|(k, _)| k == name) {
            Some(slot) => slot.1 = value.to_owned(),
            None => self.env.push((name.to_owned(), value.to_owned())),
        }
    }

    /// The declared ARGs as RUN records them: each once, the variable's current value winning.
    pub fn run_args(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for (name, value) in &self.args {
            let v = self.get(name).or(value.as_deref()).unwrap_or("").to_owned();
            match out.iter_mut().find(|(k, _)| k == name) {
                Some(slot) => slot.1 = v,
                None => out.push((name.clone(), v)),
            }
        }
        out
    }

    /// An expander over this scope as it is now: later changes to the scope do not affect it.
    pub fn expander<'a>(&self, lexer: &'a Lexer) -> Expander<'a> {
        let declared = self.args.iter().map(|(k, _)| k.clone()).collect();
        Expander::new(lexer, self.env.clone(), declared)
    }
}

/// Expands words against a fixed set of variables and remembers the undefined names it met.
pub struct Expander<'a> {
    lexer: &'a Lexer,
    env: Vec<(String, String)>,
    /// Declared ARGs without a value: referencing them is not "undefined".
    declared: BTreeSet<String>,
    unmatched: BTreeSet<String>,
}

impl<'a> Expander<'a> {
    pub fn new(lexer: &'a Lexer, env: Vec<(String, String)>, declared: BTreeSet<String>) -> Self {
        Self {
            lexer,
            env,
            declared,
            unmatched: BTreeSet::new(),
        }
    }

    /// Expands `text`, which starts at `span.start` in the source.
    pub fn word(&mut self, text: &str, span: Span) -> Result<String> {
        let e = self
            .lexer
            .process_word(text, &self.env)
            .map_err(|e| error_at(e, span))?;
        self.unmatched.extend(e.unmatched);
        Ok(e.value)
    }

    /// Expands `text` with another lexer (heredoc bodies keep their quotes), same variables.
    pub fn word_with(&mut self, lexer: &Lexer, text: &str, span: Span) -> Result<String> {
        let e = lexer
            .process_word(text, &self.env)
            .map_err(|e| error_at(e, span))?;
        self.unmatched.extend(e.unmatched);
        Ok(e.value)
    }

    /// Expands a spanned value in place.
    pub fn spanned(&mut self, value: &mut Spanned<String>) -> Result<()> {
        value.value = self.word(&value.value, value.span)?;
        Ok(())
    }

    /// Expands `text` and splits it into words (EXPOSE).
    pub fn words(&mut self, text: &str, span: Span) -> Result<Vec<String>> {
        self.lexer
            .process_words(text, &self.env)
            .map_err(|e| error_at(e, span))
    }

    /// The undefined names met, minus declared ARGs.
    pub fn undefined(self) -> BTreeSet<String> {
        self.unmatched
            .into_iter()
            .filter(|n| !self.declared.contains(n))
            .collect()
    }
}

/// An expansion error, pointed at its offset in the word when the word's span allows.
fn error_at(e: ExpandError, span: Span) -> Error {
    let start = (span.start + e.offset).min(span.end);
    Error::new(
        e.message,
        Span {
            start,
            end: span.end,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_is_ensured_once() {
        let s = Scope::from_image_env(&[]);
        assert_eq!(s.get("PATH"), Some(DEFAULT_PATH));
        let s = Scope::from_image_env(&[("PATH".into(), "/x".into())]);
        assert_eq!(s.env, [("PATH".to_owned(), "/x".to_owned())]);
    }

    #[test]
    fn set_replaces_in_place() {
        let mut s = Scope::from_image_env(&[("A".into(), "1".into())]);
        s.set("B", "2");
        s.set("A", "3");
        assert_eq!(s.env[0], ("A".to_owned(), "3".to_owned()));
        assert_eq!(s.env.len(), 3);
    }

    #[test]
    fn run_args_prefer_the_current_variable_value() {
        let args = vec![
            ("A".into(), Some("1".into())),
            ("B".into(), None),
            ("A".into(), Some("2".into())),
        ];
        let mut s = Scope {
            env: Vec::new(),
            args,
        };
        s.set("A", "env");
        assert_eq!(
            s.run_args(),
            [
                ("A".to_owned(), "env".to_owned()),
                ("B".to_owned(), String::new())
            ]
        );
    }
}
