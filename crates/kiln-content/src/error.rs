//! Typed errors of the content store.

use std::io;
use std::path::{Path, PathBuf};

use oci_spec::image::Digest;

/// Result alias for content-store operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the content store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The blob is not in the store.
    #[error("blob {digest} not found in the content store")]
    NotFound { digest: Digest },
    /// Content does not hash to the digest it was expected to have.
    #[error("digest mismatch: expected {expected}, content hashes to {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    /// Only sha256 blobs are stored.
    #[error("unsupported digest algorithm {algorithm:?} in {digest}: only sha256 is supported")]
    UnsupportedAlgorithm { algorithm: String, digest: String },
    /// A bounded read found a larger blob than allowed.
    #[error("blob {digest} is {size} bytes, over the {max} byte limit")]
    TooLarge { digest: Digest, size: u64, max: u64 },
    /// The filesystem holding the store is full.
    #[error("no space left on device while {action} {}", path.display())]
    NoSpace { action: &'static str, path: PathBuf },
    /// Any other I/O failure.
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Wraps an I/O error with what was being done where, singling out ENOSPC.
pub(crate) fn io_err(source: io::Error, action: &'static str, path: &Path) -> Error {
    let path = path.to_path_buf();
    if source.kind() == io::ErrorKind::StorageFull {
        Error::NoSpace { action, path }
    } else {
        Error::Io {
            action,
            path,
            source,
        }
    }
}
