use std::path::PathBuf;

/// Why a RUN step could not be executed (a non-zero exit is not an error: see `ExitStatus`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem or process operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path or program it was done to.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The OCI runtime spec could not be built or written.
    #[error("building the OCI runtime spec: {0}")]
    Spec(#[from] oci_spec::OciSpecError),
    /// A user or group name is not in the rootfs's `/etc/passwd` or `/etc/group`.
    #[error("unable to find {kind} {name}: no matching entries in {kind} file")]
    UnknownUser {
        /// "user" or "group".
        kind: &'static str,
        /// The name that was looked up.
        name: String,
    },
    /// A `USER` value that is neither a name nor a number.
    #[error("invalid user spec {0:?}")]
    InvalidUser(String),
    /// A path inside the rootfs has too many levels of symbolic links.
    #[error("too many levels of symbolic links resolving {0} in the rootfs")]
    SymlinkLoop(String),
    /// The in-process runtime (libcontainer) failed to create or start the container.
    #[error("container runtime: {0}")]
    Runtime(String),
    /// The helper process died without reporting a result.
    #[error("executor helper exited without a result ({0})")]
    HelperDied(String),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches the operation and path to an I/O error.
pub(crate) trait IoContext<T> {
    fn at(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Io {
            op,
            path: path.into(),
            source,
        })
    }
}

impl<T> IoContext<T> for nix::Result<T> {
    fn at(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::Io {
            op,
            path: path.into(),
            source: e.into(),
        })
    }
}
