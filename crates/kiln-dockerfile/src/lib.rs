//! Dockerfile front end: line parser, typed instructions, stages and ARG scoping, lint.
//!
//! Three layers, like BuildKit's frontend: [`parser`] (lines → [`ast::Node`]s), [`instructions`]
//! (nodes → typed instructions with flags) and expansion via `kiln-shell` in [`stages`].

pub mod ast;
pub mod error;
pub mod instructions;
pub mod lint;
pub mod parser;
pub mod stages;

pub use error::{Error, Result};
