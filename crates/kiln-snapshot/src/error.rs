use std::path::PathBuf;

/// Why a snapshot could not be prepared or finished.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem operation failed on `path`.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The overlay mount itself failed.
    #[error("mounting overlay at {}: {source}", target.display())]
    Mount {
        /// The mountpoint.
        target: PathBuf,
        /// The kernel's error.
        source: nix::Error,
    },
    /// Unmounting the rootfs failed; the upper dir is kept but the mount is still there.
    #[error("unmounting {}: {source}", target.display())]
    Unmount {
        /// The mountpoint.
        target: PathBuf,
        /// The kernel's error.
        source: nix::Error,
    },
    /// The lower list does not fit in one page of mount options.
    #[error("{count} lower layers exceed overlay's mount-option size limit")]
    TooManyLowers {
        /// How many lowers were asked for.
        count: usize,
    },
    /// A path given as a lower layer is not a directory.
    #[error("lower layer {} is not a directory", .0.display())]
    LowerNotDir(PathBuf),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches the operation and path to an I/O error.
pub(crate) trait IoContext<T> {
    fn at(self, op: &'static str, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, op: &'static str, path: &std::path::Path) -> Result<T> {
        self.map_err(|source| Error::Io {
            op,
            path: path.to_path_buf(),
            source,
        })
    }
}

impl<T> IoContext<T> for nix::Result<T> {
    fn at(self, op: &'static str, path: &std::path::Path) -> Result<T> {
        self.map_err(|e| Error::Io {
            op,
            path: path.to_path_buf(),
            source: e.into(),
        })
    }
}
