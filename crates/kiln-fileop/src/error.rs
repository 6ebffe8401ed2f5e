//! Typed errors; each names the path, pattern or URL it is about.

use std::io;
use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a file operation failed. Wordings follow BuildKit's where it has one.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// COPY/ADD was given no source at all.
    #[error("no source files were specified")]
    NoSources,
    /// Source selection failed (e.g. `"/x": not found`, bad pattern).
    #[error(transparent)]
    Source(#[from] kiln_context::Error),
    /// In-root path resolution failed (symlink loop).
    #[error(transparent)]
    Resolve(#[from] kiln_executor::Error),
    /// A directory source met an existing non-directory at the destination.
    #[error("cannot copy to non-directory: {}", .0.display())]
    NotADirectory(PathBuf),
    /// A file source met an existing directory at the destination.
    #[error("cannot replace to directory {} with file", .0.display())]
    ReplaceDirectory(PathBuf),
    /// A parent directory to create is an existing non-directory.
    #[error("mkdir {}: not a directory", .0.display())]
    MkdirNotDirectory(PathBuf),
    /// The destination rootfs's passwd/group could not be read.
    #[error("invalid --chown {spec:?}: {source}")]
    Chown {
        /// The value as written.
        spec: String,
        /// Why it could not be resolved.
        #[source]
        source: kiln_executor::Error,
    },
    /// A `--checksum` that is not `sha256:<64 hex digits>`.
    #[error("unsupported checksum {0:?}: expected sha256:<64 hex digits>")]
    InvalidChecksum(String),
    /// A download's digest differs from `--checksum`; nothing was written.
    #[error("digest mismatch {actual}: {expected} (downloading {url})")]
    ChecksumMismatch {
        /// The URL.
        url: String,
        /// The digest asked for.
        expected: String,
        /// The digest of what was received.
        actual: String,
    },
    /// An HTTP(S) download failed.
    #[error("downloading {url}: {message}")]
    Http {
        /// The URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// An archive entry's parent is a symlink to nothing: BuildKit's untar (Go's `MkdirAll`)
    /// creates no directory through it, so neither does kiln.
    #[error("archive {}: entry {name:?}: a parent is a symlink to a missing path", archive.display())]
    DanglingParent {
        /// The archive being extracted.
        archive: PathBuf,
        /// The offending entry name.
        name: String,
    },
    /// An archive entry would land outside the extraction directory.
    #[error("archive {}: entry {name:?} is outside of the destination", archive.display())]
    Breakout {
        /// The archive being extracted.
        archive: PathBuf,
        /// The offending entry name.
        name: String,
    },
}

/// Attaches the operation and path to an I/O error.
pub(crate) trait IoContext<T> {
    fn at(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Io {
            op,
            path: path.into(),
            source,
        })
    }
}
