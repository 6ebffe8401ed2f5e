//! Typed errors for context handling.

use std::io;
use std::path::{Path, PathBuf};

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while reading or selecting from a build context.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O operation on a context path failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A `.dockerignore` pattern is malformed (Go's `filepath.ErrBadPattern`).
    #[error("invalid .dockerignore pattern {pattern:?}: syntax error in pattern")]
    BadIgnorePattern {
        /// The offending pattern.
        pattern: String,
    },
    /// A lone `!` in `.dockerignore`, which moby rejects.
    #[error("illegal exclusion pattern: \"!\"")]
    IllegalExclusion,
    /// A COPY/ADD source pattern is malformed.
    #[error("invalid source pattern {pattern:?}: syntax error in pattern")]
    BadSourcePattern {
        /// The offending pattern.
        pattern: String,
    },
    /// A COPY/ADD source matched nothing (BuildKit's wording).
    #[error("failed to compute cache key: \"/{path}\": not found")]
    NotFound {
        /// The source as written, relative to the context root.
        path: String,
    },
    /// Symlink resolution exceeded the kernel's hop limit.
    #[error("too many levels of symbolic links resolving {path:?}")]
    SymlinkLoop {
        /// The path being resolved.
        path: String,
    },
    /// A file name in the context is not valid UTF-8.
    #[error("path is not valid UTF-8: {}", path.display())]
    NonUtf8Path {
        /// The offending path.
        path: PathBuf,
    },
    /// A tar context entry would land outside the unpack directory.
    #[error("unsafe path in context tar: {path:?} ({reason})")]
    UnsafeTarEntry {
        /// The entry path as stored in the archive.
        path: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// The context tar stream is unreadable.
    #[error("reading context tar: {0}")]
    Tar(#[source] io::Error),
    /// The context root is not a directory.
    #[error("context {} is not a directory", path.display())]
    NotADirectory {
        /// The given root.
        path: PathBuf,
    },
}

/// Builds an [`Error::Io`] closure-friendly value.
pub(crate) fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io {
        action,
        path,
        source,
    }
}
