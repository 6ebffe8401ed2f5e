//! Streaming blob ingestion: temp file under `ingest/`, hashed while written,
//! committed by an atomic no-clobber rename.

use std::fs::{self, File, Permissions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};
use tempfile::NamedTempFile;

use crate::error::{Error, Result, io_err};
use crate::{Digest, Sha256Writer, check_algorithm};

/// Write buffer size: large enough that small writes (tar headers) do not
/// each become a syscall.
const BUF_SIZE: usize = 256 * 1024;

/// A blob being streamed into the store. Dropping it without [`commit`]
/// removes the temp file.
///
/// [`commit`]: BlobWriter::commit
#[derive(Debug)]
pub struct BlobWriter {
    out: Sha256Writer<BufWriter<NamedTempFile>>,
    blobs: PathBuf,
}

impl BlobWriter {
    pub(crate) fn new(ingest: &Path, blobs: &Path) -> Result<Self> {
        let temp = tempfile::Builder::new()
            .prefix("blob-")
            .tempfile_in(ingest)
            .map_err(|e| io_err(e, "creating temp file in", ingest))?;
        // Marks the temp file as live for `clean_ingest`; released on close.
        flock(temp.as_file(), FlockOperation::NonBlockingLockExclusive)
            .map_err(|e| io_err(e.into(), "locking", temp.path()))?;
        Ok(Self {
            out: Sha256Writer::new(BufWriter::with_capacity(BUF_SIZE, temp)),
            blobs: blobs.to_path_buf(),
        })
    }

    /// Makes the blob durable and visible under its digest.
    ///
    /// On a digest mismatch the temp file is removed and the store is left
    /// unchanged. If the blob already exists (e.g. a concurrent writer of the
    /// same content won), the temp file is simply dropped, unsynced.
    pub fn commit(self, expected: Option<&Digest>) -> Result<(Digest, u64)> {
        let blobs = self.blobs.clone();
        let (digest, size, renamed) = self.publish(expected)?;
        if renamed {
            sync_dir(&blobs)?;
        }
        Ok((digest, size))
    }

    /// [`commit`](BlobWriter::commit) without syncing the blobs directory:
    /// returns whether a new blob was renamed into it, so that the caller
    /// syncs the directory once for several blobs before relying on them.
    pub(crate) fn publish(self, expected: Option<&Digest>) -> Result<(Digest, u64, bool)> {
        let (buffered, digest, size) = self.out.finish();
        let temp = flush_temp(buffered)?;
        if let Some(exp) = expected {
            check_algorithm(exp)?;
            if exp != &digest {
                return Err(Error::DigestMismatch {
                    expected: exp.clone(),
                    actual: digest,
                });
            }
        }
        let target = self.blobs.join(digest.digest());
        if target.exists() {
            return Ok((digest, size, false));
        }
        let temp = seal_temp(temp)?;
        match temp.persist_noclobber(&target) {
            Ok(_) => Ok((digest, size, true)),
            Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => Ok((digest, size, false)),
            Err(e) => Err(io_err(e.error, "renaming blob into", &target)),
        }
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Flushes the buffered writes into the temp file.
fn flush_temp(buffered: BufWriter<NamedTempFile>) -> Result<NamedTempFile> {
    buffered.into_inner().map_err(|e| {
        let (err, buffered) = e.into_parts();
        io_err(err, "writing", buffered.get_ref().path())
    })
}

/// Fsyncs the temp file and makes it read-only before it is published.
fn seal_temp(temp: NamedTempFile) -> Result<NamedTempFile> {
    let file = temp.as_file();
    file.sync_all()
        .map_err(|e| io_err(e, "syncing", temp.path()))?;
    file.set_permissions(Permissions::from_mode(0o444))
        .map_err(|e| io_err(e, "setting mode of", temp.path()))?;
    Ok(temp)
}

/// Persists the directory entry of a rename.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(e, "syncing", dir))
}

/// Removes `path` unless a live writer holds its lock; returns bytes freed.
pub(crate) fn remove_if_abandoned(path: &Path) -> Result<u64> {
    let file = match File::open(path) {
        Ok(f) => f,
        // Committed or cleaned by someone else meanwhile.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_err(e, "opening", path)),
    };
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(rustix::io::Errno::WOULDBLOCK) => return Ok(0),
        Err(e) => return Err(io_err(e.into(), "locking", path)),
    }
    let meta = file.metadata().map_err(|e| io_err(e, "inspecting", path))?;
    let size = if meta.is_dir() {
        fs::remove_dir_all(path).map(|()| 0)
    } else {
        fs::remove_file(path).map(|()| meta.len())
    };
    match size {
        Ok(n) => Ok(n),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(io_err(e, "removing", path)),
    }
}
