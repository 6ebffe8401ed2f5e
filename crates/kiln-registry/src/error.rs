//! Typed errors. Every variant names the image reference (or, for login,
//! the registry) so a failed build step says which image was at fault.

use oci_spec::image::Digest;

/// Result alias for registry operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The registry has no manifest for this tag or digest.
    #[error("{reference}: manifest unknown: {registry} has no such image")]
    ManifestUnknown { reference: String, registry: String },
    /// A blob listed by a manifest is missing from the registry.
    #[error("{reference}: blob {digest} unknown to {registry}")]
    BlobUnknown {
        reference: String,
        registry: String,
        digest: String,
    },
    /// Credentials are missing or wrong, or lack the needed access.
    #[error(
        "{reference}: access denied by {registry} (HTTP {status}){}",
        hint(message)
    )]
    Denied {
        reference: String,
        registry: String,
        status: u16,
        message: String,
    },
    /// The registry kept answering 429 Too Many Requests.
    #[error("{reference}: rate limited by {registry} (HTTP 429){}", hint(message))]
    RateLimited {
        reference: String,
        registry: String,
        message: String,
    },
    /// Downloaded content does not hash to its digest; it was not stored.
    /// (Digests are kept as strings here to keep `Result`s small.)
    #[error(
        "{reference}: content from {registry} does not match digest {expected} (it hashes to {actual}); nothing was stored"
    )]
    DigestMismatch {
        reference: String,
        registry: String,
        expected: String,
        actual: String,
    },
    /// The registry sent more bytes than the descriptor announced.
    #[error(
        "{reference}: blob {digest} from {registry} is larger than the {expected} bytes its descriptor announces; nothing was stored"
    )]
    SizeMismatch {
        reference: String,
        registry: String,
        digest: String,
        expected: u64,
    },
    /// No connection could be made (or kept) to the registry.
    #[error("{reference}: registry {registry} is unreachable: {message}")]
    Unreachable {
        reference: String,
        registry: String,
        message: String,
    },
    /// Docker image manifest schema 1 (signed, pre-2016) is not supported.
    #[error(
        "{reference}: the registry serves a Docker schema 1 manifest, which is deprecated and not supported; push the image again with a current client"
    )]
    Schema1 { reference: String },
    /// A single-platform image is not for the wanted platform.
    #[error(
        "image with reference {reference} was found but does not match the specified platform: wanted {wanted}, actual: {actual}"
    )]
    PlatformMismatch {
        reference: String,
        wanted: String,
        actual: String,
    },
    /// A manifest list / index has no entry for the wanted platform.
    #[error(
        "{reference}: no match for platform in manifest: wanted {wanted}, available: {available}"
    )]
    NoMatchingPlatform {
        reference: String,
        wanted: String,
        available: String,
    },
    /// A manifest, index or token reply could not be understood.
    #[error("{reference}: invalid reply from {registry}: {message}")]
    InvalidReply {
        reference: String,
        registry: String,
        message: String,
    },
    /// The registry answered with a status this client does not expect.
    #[error(
        "{reference}: {registry} answered {request} with HTTP {status}{}",
        hint(message)
    )]
    Protocol {
        reference: String,
        registry: String,
        request: String,
        status: u16,
        message: String,
    },
    /// The local content store failed.
    #[error("{reference}: content store: {source}")]
    Content {
        reference: String,
        #[source]
        source: kiln_content::Error,
    },
    /// Reading or writing the Docker config or a credential helper failed.
    #[error("credentials for {registry}: {message}")]
    Credentials { registry: String, message: String },
    /// CA certificates for the registry could not be loaded.
    #[error("TLS setup for {registry}: {message}")]
    Tls { registry: String, message: String },
    /// A platform string is not `os/arch[/variant]`.
    #[error("invalid platform {0:?}: expected os/arch[/variant]")]
    InvalidPlatform(String),
}

fn hint(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

/// What an operation is about: the reference for messages, the registry
/// host it talks to. Builds the errors that need both.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub reference: String,
    pub registry: String,
}

impl Target {
    pub fn unreachable(&self, message: impl std::fmt::Display) -> Error {
        Error::Unreachable {
            reference: self.reference.clone(),
            registry: self.registry.clone(),
            message: message.to_string(),
        }
    }

    pub fn invalid(&self, message: impl std::fmt::Display) -> Error {
        Error::InvalidReply {
            reference: self.reference.clone(),
            registry: self.registry.clone(),
            message: message.to_string(),
        }
    }

    pub fn denied(&self, status: u16, message: String) -> Error {
        Error::Denied {
            reference: self.reference.clone(),
            registry: self.registry.clone(),
            status,
            message,
        }
    }

    pub fn rate_limited(&self, message: String) -> Error {
        Error::RateLimited {
            reference: self.reference.clone(),
            registry: self.registry.clone(),
            message,
        }
    }

    pub fn protocol(&self, request: String, status: u16, message: String) -> Error {
        Error::Protocol {
            reference: self.reference.clone(),
            registry: self.registry.clone(),
            request,
            status,
            message,
        }
    }

    pub fn content(&self, source: kiln_content::Error) -> Error {
        match source {
            kiln_content::Error::DigestMismatch { expected, actual } => {
                self.mismatch(expected, actual)
            }
            source => Error::Content {
                reference: self.reference.clone(),
                source,
            },
        }
    }

    pub fn mismatch(&self, expected: Digest, actual: Digest) -> Error {
        Error::DigestMismatch {
            reference: self.reference.clone(),
            registry: self.registry.clone(),
            expected: expected.to_string(),
            actual: actual.to_string(),
        }
    }

    pub fn manifest_unknown(&self) -> Error {
        Error::ManifestUnknown {
            reference: self.reference.clone(),
            registry: self.registry.clone(),
        }
    }

    pub fn blob_unknown(&self, digest: &Digest) -> Error {
        Error::BlobUnknown {
            reference: self.reference.clone(),
            registry: self.registry.clone(),
            digest: digest.to_string(),
        }
    }
}
