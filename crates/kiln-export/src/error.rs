//! Typed errors of archive import and export.

use std::io;

use kiln_content::Digest;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong reading or writing an image archive.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The content store failed (I/O, full disk, or a blob whose content
    /// does not match the digest it was committed under).
    #[error(transparent)]
    Content(#[from] kiln_content::Error),
    /// Reading the archive (or layout directory) failed.
    #[error("reading {what}: {source}")]
    Read {
        what: String,
        #[source]
        source: io::Error,
    },
    /// Writing a staged layer into the content store failed (disk full...).
    #[error("staging {what} into the content store: {source}")]
    Stage {
        what: String,
        #[source]
        source: io::Error,
    },
    /// Writing the output archive failed.
    #[error("writing the archive: {0}")]
    Write(#[source] io::Error),
    /// The archive stops before its end (cut-off download, partial copy).
    #[error("the archive is truncated: {0}")]
    Truncated(String),
    /// A member name or link target would escape the archive root.
    #[error("unsafe path {path:?} in the archive: it escapes the archive root")]
    PathTraversal { path: String },
    /// Neither `manifest.json` nor `index.json` is present.
    #[error(
        "not an image archive: neither manifest.json (docker-archive) nor index.json (OCI layout) found"
    )]
    UnknownFormat,
    /// A file the archive's own metadata refers to is not in it.
    #[error("{path} is referenced but missing from the archive")]
    MissingMember { path: String },
    /// A blob an image needs is not in the content store.
    #[error("blob {digest} of image {image} is missing from the content store")]
    MissingBlob { image: Digest, digest: Digest },
    /// A JSON document (manifest, config, index) does not parse.
    #[error("invalid JSON in {what}: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    /// Content does not hash to the digest its descriptor names.
    #[error("{what}: digest mismatch: expected {}, content hashes to {}", digests.expected, digests.actual)]
    DigestMismatch {
        what: String,
        digests: Box<Mismatch>,
    },
    /// A layer's uncompressed content disagrees with the config's `rootfs.diff_ids`.
    #[error(
        "layer {path}: uncompressed content hashes to {} but rootfs.diff_ids[{index}] is {}",
        digests.actual,
        digests.expected
    )]
    DiffIdMismatch {
        path: String,
        index: usize,
        digests: Box<Mismatch>,
    },
    /// Content is not the size its descriptor names.
    #[error("{what} is {actual} bytes but its descriptor says {expected}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    /// Manifest layers and config `rootfs.diff_ids` disagree in count.
    #[error("image {what} lists {layers} layers but its config has {diff_ids} rootfs.diff_ids")]
    LayerCountMismatch {
        what: String,
        layers: usize,
        diff_ids: usize,
    },
    /// A layer is not a valid (optionally gzip-compressed) tar stream.
    #[error("layer {path} is corrupt: {reason}")]
    CorruptLayer { path: String, reason: String },
    /// Valid content that kiln does not handle (zstd layers, artifacts...).
    #[error("{what}: unsupported: {reason}")]
    Unsupported { what: String, reason: String },
    /// A metadata document is over the size kept in memory.
    #[error("{what} is over the {max} byte limit for metadata")]
    TooLarge { what: String, max: u64 },
    /// A digest string in the archive's metadata is malformed.
    #[error("invalid digest {value:?} in {what}")]
    BadDigest { what: String, value: String },
    /// An export tag is not a valid image reference.
    #[error("invalid image reference {reference:?}: {source}")]
    Reference {
        reference: String,
        #[source]
        source: kiln_image::ReferenceError,
    },
    /// Serialising a manifest or index failed.
    #[error("building {what}: {reason}")]
    Build { what: String, reason: String },
}

/// The digest content was expected to have, and the one it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub expected: Digest,
    pub actual: Digest,
}

/// Builds the boxed pair carried by the mismatch errors.
pub(crate) fn mismatch(expected: &Digest, actual: &Digest) -> Box<Mismatch> {
    Box::new(Mismatch {
        expected: expected.clone(),
        actual: actual.clone(),
    })
}

/// Maps an I/O error met while reading `what`, singling out a premature EOF.
pub(crate) fn read_err(source: io::Error, what: impl Into<String>) -> Error {
    let what = what.into();
    if source.kind() == io::ErrorKind::UnexpectedEof {
        Error::Truncated(format!("{what}: {source}"))
    } else {
        Error::Read { what, source }
    }
}

/// Wraps a JSON parse failure of `what`.
pub(crate) fn json_err(source: serde_json::Error, what: impl Into<String>) -> Error {
    Error::Json {
        what: what.into(),
        source,
    }
}
