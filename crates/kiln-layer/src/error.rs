//! Typed errors of layer writing and unpacking.

use std::io;
use std::path::PathBuf;

/// Result alias for layer operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong writing or unpacking a layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The layer stream could not be read or decompressed, or is not a valid tar.
    #[error("reading layer stream: {0}")]
    Read(#[source] io::Error),
    /// The layer blob could not be written to its destination.
    #[error("writing layer stream: {0}")]
    Write(#[source] io::Error),
    /// A file of the diff directory could not be read.
    #[error("reading {}: {source}", path.display())]
    Source {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A file changed size while it was being archived.
    #[error("{} changed size while being archived", path.display())]
    Changed { path: PathBuf },
    /// An entry could not be applied to the destination.
    #[error("layer entry {path:?}: {source}")]
    Entry {
        path: String,
        #[source]
        source: io::Error,
    },
    /// An entry tried to reach outside the destination or is malformed.
    #[error("layer entry {path:?} rejected: {reason}")]
    Unsafe { path: String, reason: &'static str },
    /// An entry of a type layers may not contain.
    #[error("layer entry {path:?} has unsupported type {kind:?}")]
    Unsupported { path: String, kind: char },
}
