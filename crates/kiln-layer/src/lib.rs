//! OCI layer tars: deterministic diff tars with whiteouts, compression, safe
//! unpacking.
//!
//! [`write_layer`] turns an overlayfs upper directory into a layer blob the
//! way BuildKit does; [`unpack_layer`] applies a layer blob to a directory
//! without ever writing outside it; [`diff_id_of`] hashes a layer's
//! uncompressed tar for images imported from elsewhere.

mod compress;
mod error;
mod header;
mod root;
mod unpack;
mod write;

use std::io::{self, Read};

pub use kiln_content::Digest;
use kiln_content::Sha256Writer;

pub use error::{Error, Result};
pub use unpack::{UnpackOptions, UnpackStats, WhiteoutMode, unpack_layer};
pub use write::write_layer;

/// Prefix that marks a whiteout entry in a layer tar.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Entry name that marks its directory as opaque in a layer tar.
pub const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// gzip, the media type every registry and runtime accepts.
    #[default]
    Gzip,
    /// zstd, smaller and faster but needs newer runtimes.
    Zstd,
    /// A plain tar.
    None,
}

impl Compression {
    /// The OCI media type of a layer compressed this way.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Self::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
            Self::None => "application/vnd.oci.image.layer.v1.tar",
        }
    }
}

/// How [`write_layer`] builds the layer.
#[derive(Debug, Clone, Default)]
pub struct LayerOptions {
    /// Compression of the produced blob.
    pub compression: Compression,
    /// Compression level; `None` picks BuildKit's default for the algorithm.
    pub compression_level: Option<i32>,
    /// `SOURCE_DATE_EPOCH`: mtimes later than this are clamped to it, for
    /// reproducible layers.
    pub source_date_epoch: Option<i64>,
    /// Record every extended attribute instead of only `security.capability`
    /// (the only one BuildKit records). Overlay's own xattrs are never kept.
    pub all_xattrs: bool,
}

/// What [`write_layer`] produced: enough to describe the layer in a manifest
/// (`digest`, `size`) and in the image config (`diff_id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerDescriptor {
    /// sha256 of the compressed blob.
    pub digest: Digest,
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
    /// Size of the compressed blob in bytes.
    pub size: u64,
    /// Size of the uncompressed tar in bytes.
    pub uncompressed_size: u64,
    /// Compression of the blob, which determines its media type.
    pub compression: Compression,
}

/// Computes the diff_id (sha256 of the uncompressed tar) and uncompressed
/// size of a layer blob, detecting its compression. Streams; needed when
/// importing layers whose config is not trusted or not available.
pub fn diff_id_of(reader: impl Read) -> Result<(Digest, u64)> {
    let (_, mut tar) = compress::decompress(reader).map_err(Error::Read)?;
    let mut hasher = Sha256Writer::new(io::sink());
    io::copy(&mut tar, &mut hasher).map_err(Error::Read)?;
    let (_, digest, size) = hasher.finish();
    Ok((digest, size))
}

/// The size of a layer's content as `docker images` counts it: what
/// `directory.Size` of the overlay2 graphdriver sums over the unpacked layer
/// directory. That is the apparent size of every non-directory entry, each
/// inode once: regular files count their size, symlinks the length of their
/// target, hard links nothing (they share the inode of their target), and
/// directories, devices, FIFOs and whiteouts nothing. An entry repeated in
/// the tar counts as its last occurrence, as it would on disk.
///
/// Streams the blob (gzip, zstd or plain, detected by magic) through a walk
/// of the tar headers; file contents are skipped, never kept.
pub fn content_size(reader: impl Read) -> Result<u64> {
    use std::collections::HashMap;
    use tar::EntryType;

    let (_, tar) = compress::decompress(reader).map_err(Error::Read)?;
    let mut archive = tar::Archive::new(tar);
    // Path -> counted size; memory grows with the number of entries only.
    let mut sizes: HashMap<Vec<u8>, u64> = HashMap::new();
    for entry in archive.entries().map_err(Error::Read)? {
        let entry = entry.map_err(Error::Read)?;
        let path = entry.path_bytes();
        let key = normalize_entry_path(&path);
        let name = key.rsplit(|&b| b == b'/').next().unwrap_or(&key);
        if name.starts_with(WHITEOUT_PREFIX.as_bytes()) {
            continue;
        }
        let size = match entry.header().entry_type() {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => entry.size(),
            EntryType::Symlink => entry
                .link_name_bytes()
                .map_or(0, |target| target.len() as u64),
            EntryType::Directory => {
                sizes.remove(&key);
                continue;
            }
            _ => 0,
        };
        sizes.insert(key, size);
    }
    Ok(sizes.values().sum())
}

/// `./a/b/`, `/a/b` and `a/b` name the same entry.
fn normalize_entry_path(path: &[u8]) -> Vec<u8> {
    let mut p = path;
    loop {
        if let Some(rest) = p.strip_prefix(b"./") {
            p = rest;
        } else if let Some(rest) = p.strip_prefix(b"/") {
            p = rest;
        } else {
            break;
        }
    }
    while let Some(rest) = p.strip_suffix(b"/") {
        p = rest;
    }
    p.to_vec()
}
