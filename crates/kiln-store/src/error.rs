//! Typed errors of the image store.

use std::io;
use std::path::{Path, PathBuf};

use kiln_content::Digest;

/// Result alias for store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Everything that can go wrong in the image store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No image matches the reference, ID or digest (Docker's wording).
    #[error("No such image: {0}")]
    NotFound(String),
    /// An ID prefix matches several images.
    #[error("multiple IDs found with provided prefix: {0}")]
    AmbiguousId(String),
    /// The tag to remove does not exist.
    #[error("No such image: {0}")]
    NoSuchTag(String),
    /// `rmi` by ID of an image tagged in several repositories, without force.
    #[error(
        "conflict: unable to delete {short_id} (must be forced) - image is referenced in multiple repositories"
    )]
    MultipleRepositories {
        /// First 12 hex characters of the image ID.
        short_id: String,
    },
    /// `docker tag` target carrying a digest.
    #[error("refusing to create a tag with a digest reference: {0}")]
    TagWithDigest(String),
    /// A blob the image needs is not in the content store.
    #[error("blob {0} is missing from the content store")]
    MissingBlob(Digest),
    /// A name or tag is not a valid reference.
    #[error(transparent)]
    Reference(#[from] kiln_image::ReferenceError),
    /// A manifest or config could not be parsed or built.
    #[error(transparent)]
    Image(#[from] kiln_image::ImageError),
    /// A config blob could not be parsed.
    #[error(transparent)]
    Config(#[from] kiln_image::ConfigError),
    /// The content store failed.
    #[error(transparent)]
    Content(#[from] kiln_content::Error),
    /// The metadata database failed.
    #[error("image store database: {0}")]
    Db(#[from] rusqlite::Error),
    /// A filesystem operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The lease expired and was collected.
    #[error("lease {0} has expired")]
    LeaseExpired(String),
    /// A `--filter` value kiln does not understand.
    #[error("invalid filter '{0}'")]
    InvalidFilter(String),
    /// The database was written by a newer kiln.
    #[error("image store schema version {found} is newer than this kiln supports ({supported})")]
    SchemaTooNew {
        /// Version found in `meta.db`.
        found: i64,
        /// Highest version this build knows.
        supported: i64,
    },
    /// The database holds a value that cannot be interpreted.
    #[error("corrupt image store metadata: {0}")]
    Corrupt(String),
}

/// Wraps an I/O error with what was being done and where.
pub(crate) fn io_err(source: io::Error, action: &'static str, path: &Path) -> StoreError {
    StoreError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}
