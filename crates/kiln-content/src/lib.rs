//! Content-addressed blob store laid out as an OCI image layout.
//!
//! Blobs live at `root/blobs/sha256/<hex>`, so the store root doubles as an
//! OCI image layout directory. New content is streamed into a temporary file
//! under `root/ingest/` while being hashed, then atomically renamed into place:
//! readers never observe a partial blob.

mod error;
mod hash;
mod writer;

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use error::{Error, Result};
pub use hash::{Sha256Writer, sha256_digest};
pub use oci_spec::image::Digest;
pub use writer::BlobWriter;

use error::io_err;
use oci_spec::image::DigestAlgorithm;

/// Contents of the `oci-layout` marker file required by the image-layout spec.
const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// A content-addressed store of sha256 blobs. Cheap to clone; all clones share
/// the same root.
#[derive(Clone, Debug)]
pub struct ContentStore {
    inner: Arc<Paths>,
}

#[derive(Debug)]
struct Paths {
    root: PathBuf,
    blobs: PathBuf,
    ingest: PathBuf,
}

impl ContentStore {
    /// Opens (creating if needed) a store rooted at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        let blobs = root.join("blobs").join("sha256");
        let ingest = root.join("ingest");
        for dir in [&blobs, &ingest] {
            fs::create_dir_all(dir).map_err(|e| io_err(e, "creating", dir))?;
        }
        let layout = root.join("oci-layout");
        if !layout.exists() {
            fs::write(&layout, OCI_LAYOUT).map_err(|e| io_err(e, "writing", &layout))?;
        }
        let inner = Arc::new(Paths {
            root,
            blobs,
            ingest,
        });
        Ok(Self { inner })
    }

    /// The image-layout root directory.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Where the blob for `d` lives (whether or not it exists).
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.inner
            .root
            .join("blobs")
            .join(d.algorithm().as_ref())
            .join(d.digest())
    }

    /// Whether the blob is present. Unsupported algorithms are never present.
    pub fn contains(&self, d: &Digest) -> bool {
        check_algorithm(d).is_ok() && self.blob_path(d).is_file()
    }

    /// Size in bytes of a stored blob.
    pub fn size(&self, d: &Digest) -> Result<u64> {
        let path = self.existing_path(d)?;
        let meta = fs::metadata(&path).map_err(|e| self.not_found_or(e, d, &path))?;
        Ok(meta.len())
    }

    /// Opens a stored blob for streaming reads.
    pub fn open_blob(&self, d: &Digest) -> Result<File> {
        let path = self.existing_path(d)?;
        File::open(&path).map_err(|e| self.not_found_or(e, d, &path))
    }

    /// Starts streaming a new blob into a temporary file under `ingest/`.
    pub fn writer(&self) -> Result<BlobWriter> {
        BlobWriter::new(&self.inner.ingest, &self.inner.blobs)
    }

    /// Streams `r` into the store, verifying `expected` if given.
    pub fn ingest(&self, mut r: impl Read, expected: Option<&Digest>) -> Result<(Digest, u64)> {
        if let Some(d) = expected {
            check_algorithm(d)?;
        }
        let mut w = self.writer()?;
        io::copy(&mut r, &mut w).map_err(|e| io_err(e, "ingesting into", &self.inner.ingest))?;
        w.commit(expected)
    }

    /// Stores a small in-memory blob such as a config or manifest. One that
    /// is already stored is not written again (no temp file, no fsync).
    pub fn write_bytes(&self, bytes: &[u8]) -> Result<Digest> {
        let (digest, renamed) = self.put_small(bytes)?;
        if renamed {
            writer::sync_dir(&self.inner.blobs)?;
        }
        Ok(digest)
    }

    /// Stores several small blobs (an image's config and manifest) durably,
    /// syncing the blobs directory once for all of them. Blobs already
    /// stored are not written again.
    pub fn write_all_bytes(&self, blobs: &[&[u8]]) -> Result<Vec<Digest>> {
        let mut digests = Vec::with_capacity(blobs.len());
        let mut renamed = false;
        for bytes in blobs {
            let (digest, new) = self.put_small(bytes)?;
            renamed |= new;
            digests.push(digest);
        }
        if renamed {
            writer::sync_dir(&self.inner.blobs)?;
        }
        Ok(digests)
    }

    /// Writes `bytes` unless stored already, without syncing the blobs
    /// directory; returns its digest and whether it was renamed into place.
    fn put_small(&self, bytes: &[u8]) -> Result<(Digest, bool)> {
        let digest = sha256_digest(bytes);
        if self.contains(&digest) {
            return Ok((digest, false));
        }
        let mut w = self.writer()?;
        w.write_all(bytes)
            .map_err(|e| io_err(e, "ingesting into", &self.inner.ingest))?;
        let (_, _, renamed) = w.publish(Some(&digest))?;
        Ok((digest, renamed))
    }

    /// Reads a whole blob of at most `max_len` bytes and checks its digest.
    /// The bound keeps a corrupt or hostile store from exhausting memory.
    pub fn read_bytes(&self, d: &Digest, max_len: u64) -> Result<Vec<u8>> {
        let size = self.size(d)?;
        if size > max_len {
            return Err(Error::TooLarge {
                digest: d.clone(),
                size,
                max: max_len,
            });
        }
        let path = self.blob_path(d);
        let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        self.open_blob(d)?
            .take(max_len.saturating_add(1))
            .read_to_end(&mut buf)
            .map_err(|e| io_err(e, "reading", &path))?;
        let actual = sha256_digest(&buf);
        if &actual != d {
            return Err(Error::DigestMismatch {
                expected: d.clone(),
                actual,
            });
        }
        Ok(buf)
    }

    /// Removes a blob. Missing blobs yield [`Error::NotFound`].
    pub fn delete(&self, d: &Digest) -> Result<()> {
        let path = self.existing_path(d)?;
        fs::remove_file(&path).map_err(|e| self.not_found_or(e, d, &path))
    }

    /// All stored blobs, in no particular order. Files whose names are not
    /// sha256 hex (foreign or stray files) are skipped.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let dir = &self.inner.blobs;
        let entries = fs::read_dir(dir).map_err(|e| io_err(e, "listing", dir))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_err(e, "listing", dir))?;
            if let Some(d) = entry.file_name().to_str().and_then(parse_sha256_hex) {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// Re-hashes a stored blob to detect on-disk corruption.
    pub fn verify(&self, d: &Digest) -> Result<()> {
        let mut file = self.open_blob(d)?;
        let mut hasher = Sha256Writer::new(io::sink());
        io::copy(&mut file, &mut hasher).map_err(|e| io_err(e, "reading", &self.blob_path(d)))?;
        let (_, actual, _) = hasher.finish();
        if &actual == d {
            Ok(())
        } else {
            Err(Error::DigestMismatch {
                expected: d.clone(),
                actual,
            })
        }
    }

    /// Deletes temporary files left in `ingest/` by writers that died before
    /// committing. Files of live writers (in any process) are kept: each
    /// writer holds an exclusive `flock` on its temp file. Returns bytes freed.
    pub fn clean_ingest(&self) -> Result<u64> {
        let dir = &self.inner.ingest;
        let entries = fs::read_dir(dir).map_err(|e| io_err(e, "listing", dir))?;
        let mut freed = 0;
        for entry in entries {
            let path = entry.map_err(|e| io_err(e, "listing", dir))?.path();
            freed += writer::remove_if_abandoned(&path)?;
        }
        Ok(freed)
    }

    /// The path of `d`, after checking the algorithm is supported.
    fn existing_path(&self, d: &Digest) -> Result<PathBuf> {
        check_algorithm(d)?;
        Ok(self.blob_path(d))
    }

    fn not_found_or(&self, e: io::Error, d: &Digest, path: &Path) -> Error {
        if e.kind() == io::ErrorKind::NotFound {
            Error::NotFound { digest: d.clone() }
        } else {
            io_err(e, "accessing", path)
        }
    }
}

/// Rejects digests whose algorithm the store cannot hold.
pub(crate) fn check_algorithm(d: &Digest) -> Result<()> {
    match d.algorithm() {
        DigestAlgorithm::Sha256 => Ok(()),
        other => Err(Error::UnsupportedAlgorithm {
            algorithm: other.to_string(),
            digest: d.to_string(),
        }),
    }
}

fn parse_sha256_hex(name: &str) -> Option<Digest> {
    let d: Digest = format!("sha256:{name}").parse().ok()?;
    Some(d)
}
