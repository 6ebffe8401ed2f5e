//! Reading a Dockerfile for a command: `-f`, stdin, build args, and `file:line:col` errors.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use kiln_dockerfile::stages::{Dockerfile, StageOptions, stages};

use crate::cli::DockerfileArgs;

/// A Dockerfile's text and the name errors call it by.
pub struct Source {
    pub name: String,
    pub text: String,
    pub path: Option<PathBuf>,
}

impl Source {
    /// Reads `-f PATH` (default `CONTEXT/Dockerfile`, `-` = stdin).
    pub fn read(args: &DockerfileArgs) -> anyhow::Result<Self> {
        let path = args
            .file
            .clone()
            .unwrap_or_else(|| args.context.join("Dockerfile"));
        if path == Path::new("-") {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading the Dockerfile from stdin")?;
            return Ok(Self {
                name: "Dockerfile".into(),
                text,
                path: None,
            });
        }
        let bytes = std::fs::read(&path)
            .with_context(|| format!("failed to read Dockerfile {}", path.display()))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| anyhow!("{}: the Dockerfile is not valid UTF-8", path.display()))?;
        Ok(Self {
            name: path.display().to_string(),
            text,
            path: Some(path),
        })
    }

    /// Turns a front-end error into `file:line:col: message` with the source line and a caret.
    pub fn error(&self, err: &kiln_dockerfile::Error) -> anyhow::Error {
        anyhow!(err.render(&self.name, &self.text))
    }

    /// Parses and resolves stages, expanding with `build_args`.
    pub fn stages(&self, build_args: &BTreeMap<String, String>) -> anyhow::Result<Dockerfile> {
        let ast = kiln_dockerfile::parser::parse(&self.text).map_err(|e| self.error(&e))?;
        stages(&ast, &self.text, build_args, &StageOptions::default()).map_err(|e| self.error(&e))
    }
}

/// `--build-arg KEY=VALUE`, or `KEY` alone to take the value from the environment (unset: ignored).
pub fn build_args(raw: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut args = BTreeMap::new();
    for item in raw {
        match item.split_once('=') {
            Some(("", _)) => return Err(anyhow!("invalid build-arg {item:?}: empty name")),
            Some((key, value)) => {
                args.insert(key.to_owned(), value.to_owned());
            }
            None => {
                if let Ok(value) = std::env::var(item) {
                    args.insert(item.clone(), value);
                }
            }
        }
    }
    Ok(args)
}
