//! Image references following Docker's grammar and normalisation
//! (`busybox` → `docker.io/library/busybox:latest`).

use std::fmt;
use std::str::FromStr;

use oci_spec::image::Digest;

use crate::glob::path_match;

/// Registry that names without a domain resolve to.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// Legacy alias Docker rewrites to [`DEFAULT_DOMAIN`].
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// Namespace of Docker Hub's official images.
const OFFICIAL_REPO_PREFIX: &str = "library/";
/// Tag added when a reference names neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
/// Longest allowed `domain/path`, as in distribution/reference.
const NAME_TOTAL_LENGTH_MAX: usize = 255;
/// Longest allowed tag (`[\w][\w.-]{0,127}`).
const TAG_LENGTH_MAX: usize = 128;

/// Why a string is not a valid image reference; messages follow Docker's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// The string does not match the reference grammar.
    #[error("invalid reference format")]
    InvalidFormat,
    /// The repository part contains upper-case letters.
    #[error("invalid reference format: repository name must be lowercase")]
    Uppercase,
    /// `domain/path` is longer than 255 characters.
    #[error("repository name must not be more than 255 characters")]
    NameTooLong,
    /// A bare 64-hex string is an image ID, never a repository name.
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    HexIdentifier(String),
    /// The `@digest` part is syntactically a digest but not a valid one.
    #[error("invalid checksum digest format: {0}")]
    InvalidDigest(String),
    /// The pattern given to [`Reference::familiar_match`] is malformed.
    #[error("syntax error in pattern")]
    BadPattern,
}

/// A normalised, fully qualified image reference.
///
/// A reference without tag and digest gets the `latest` tag, as
/// `docker build -t` and `docker pull` do.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalises a reference the way `docker` does
    /// (`ParseNormalizedNamed` followed by `TagNameOnly`).
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        let mut r = Self::parse_named(s)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(r)
    }

    /// Parses and normalises without adding the default tag, so a bare name
    /// stays a bare repository (useful for `docker images busybox`).
    pub fn parse_named(s: &str) -> Result<Self, ReferenceError> {
        if is_hex_identifier(s) {
            return Err(ReferenceError::HexIdentifier(s.to_string()));
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote = remainder.split(':').next().unwrap_or_default();
        if remote.to_lowercase() != remote {
            return Err(ReferenceError::Uppercase);
        }
        let (rest, digest) = split_digest(&remainder)?;
        let (path, tag) = split_tag(rest)?;
        validate_domain(&domain)?;
        validate_path(path)?;
        if domain.len() + 1 + path.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(ReferenceError::NameTooLong);
        }
        Ok(Self {
            domain,
            path: path.to_string(),
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// Registry host (and port), e.g. `docker.io` or `localhost:5000`.
    pub fn registry(&self) -> &str {
        &self.domain
    }

    /// Repository path within the registry, e.g. `library/busybox`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Fully qualified repository name, e.g. `docker.io/library/busybox`.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// Tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// Digest, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// Short repository name as `docker images` shows it
    /// (`busybox`, `lab/busybox`, `localhost:5000/a`).
    pub fn familiar(&self) -> String {
        if self.domain != DEFAULT_DOMAIN {
            return self.repository();
        }
        match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
            Some(short) if !short.contains('/') => short.to_string(),
            _ => self.path.clone(),
        }
    }

    /// Short form with tag and digest (`busybox:latest`).
    pub fn familiar_string(&self) -> String {
        let mut s = self.familiar();
        self.push_suffix(&mut s);
        s
    }

    /// Same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Result<Self, ReferenceError> {
        if !is_valid_tag(tag) {
            return Err(ReferenceError::InvalidFormat);
        }
        Ok(Self {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        })
    }

    /// Same repository pinned to `digest`, without tag (a `RepoDigests` entry).
    pub fn with_digest(&self, digest: Digest) -> Self {
        Self {
            tag: None,
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// Docker's `reference=` filter: a `path.Match` glob against the familiar
    /// string, falling back to the familiar name.
    pub fn familiar_match(&self, pattern: &str) -> Result<bool, ReferenceError> {
        let full =
            path_match(pattern, &self.familiar_string()).ok_or(ReferenceError::BadPattern)?;
        if full {
            return Ok(true);
        }
        path_match(pattern, &self.familiar()).ok_or(ReferenceError::BadPattern)
    }

    fn push_suffix(&self, s: &mut String) {
        if let Some(tag) = &self.tag {
            s.push(':');
            s.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            s.push('@');
            s.push_str(digest.as_ref());
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.repository();
        self.push_suffix(&mut s);
        f.write_str(&s)
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// True for a bare 64-character lowercase hex string (an image ID).
pub fn is_hex_identifier(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Docker's domain rule: the first `/`-separated component is a registry
/// when it contains `.` or `:`, is `localhost`, or has upper-case letters.
fn split_docker_domain(s: &str) -> (String, String) {
    let (mut domain, mut remainder) = match s.split_once('/') {
        Some((first, rest)) if looks_like_domain(first) => (first.to_string(), rest.to_string()),
        _ => (DEFAULT_DOMAIN.to_string(), s.to_string()),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN.to_string();
    }
    if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        remainder = format!("{OFFICIAL_REPO_PREFIX}{remainder}");
    }
    (domain, remainder)
}

fn looks_like_domain(first: &str) -> bool {
    first.contains(['.', ':']) || first == "localhost" || first.to_lowercase() != first
}

fn split_digest(s: &str) -> Result<(&str, Option<Digest>), ReferenceError> {
    let Some((rest, digest)) = s.split_once('@') else {
        return Ok((s, None));
    };
    if !is_digest_syntax(digest) {
        return Err(ReferenceError::InvalidFormat);
    }
    let parsed =
        Digest::from_str(digest).map_err(|e| ReferenceError::InvalidDigest(e.to_string()))?;
    Ok((rest, Some(parsed)))
}

/// `algorithm ":" hex{32,}` where algorithm is
/// `[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*`.
fn is_digest_syntax(s: &str) -> bool {
    let Some((alg, hex)) = s.split_once(':') else {
        return false;
    };
    let alg_ok = alg.split(['-', '_', '+', '.']).all(|part| {
        let mut chars = part.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric())
    });
    alg_ok && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Splits `path[:tag]`; a `:` before the last `/` belongs to the domain,
/// which has already been removed, so any `:` here starts the tag.
fn split_tag(s: &str) -> Result<(&str, Option<&str>), ReferenceError> {
    match s.rsplit_once(':') {
        None => Ok((s, None)),
        Some((_, tag)) if !is_valid_tag(tag) => Err(ReferenceError::InvalidFormat),
        Some((path, tag)) => Ok((path, Some(tag))),
    }
}

/// Tag grammar `[\w][\w.-]{0,127}`.
pub fn is_valid_tag(tag: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut bytes = tag.bytes();
    tag.len() <= TAG_LENGTH_MAX
        && bytes.next().is_some_and(word)
        && bytes.all(|b| word(b) || b == b'.' || b == b'-')
}

fn validate_path(path: &str) -> Result<(), ReferenceError> {
    if path.split('/').all(is_path_component) {
        return Ok(());
    }
    if path.to_lowercase().split('/').all(is_path_component) {
        return Err(ReferenceError::Uppercase);
    }
    Err(ReferenceError::InvalidFormat)
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn is_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: &u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    let mut i = 0;
    loop {
        let start = i;
        while b.get(i).is_some_and(alnum) {
            i += 1;
        }
        if i == start {
            return false;
        }
        match b.get(i) {
            None => return true,
            Some(b'.') => i += 1,
            Some(b'_') => i += if b.get(i + 1) == Some(&b'_') { 2 } else { 1 },
            Some(b'-') => {
                while b.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            Some(_) => return false,
        }
    }
}

/// `host[:port]` where host is dot-separated labels or a bracketed IPv6.
fn validate_domain(domain: &str) -> Result<(), ReferenceError> {
    let (host, port) = split_port(domain);
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let host_ok = if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b':')
    } else {
        host.split('.').all(is_domain_label)
    };
    if port_ok && host_ok {
        Ok(())
    } else {
        Err(ReferenceError::InvalidFormat)
    }
}

fn split_port(domain: &str) -> (&str, Option<&str>) {
    let after_bracket = domain.rfind(']').map_or(0, |i| i + 1);
    match domain.get(after_bracket..).and_then(|tail| tail.find(':')) {
        Some(i) => {
            let at = after_bracket + i;
            (&domain[..at], domain.get(at + 1..))
        }
        None => (domain, None),
    }
}

/// `[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?`.
fn is_domain_label(label: &str) -> bool {
    !label.is_empty()
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}
