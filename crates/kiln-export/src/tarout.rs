//! A minimal tar writer for exports: ustar headers with fixed owner and
//! mtime, and no end-of-archive marker unless [`TarWriter::finish`] is
//! reached, so an export that fails half-way never looks complete (the
//! `tar` crate's builder writes the marker when dropped).

use std::io::{self, BufWriter, Read, Write};

use kiln_content::{Digest, Sha256Writer};

use crate::error::{Error, Result};
use crate::stage::copy_with;

const BLOCK: u64 = 512;
/// Output buffer, so headers and padding are not a write each.
const IO_BUFFER: usize = 256 * 1024;

/// Writes archive members to `out`.
pub(crate) struct TarWriter<W: Write> {
    out: BufWriter<W>,
}

impl<W: Write> TarWriter<W> {
    pub(crate) fn new(out: W) -> Self {
        Self {
            out: BufWriter::with_capacity(IO_BUFFER, out),
        }
    }

    pub(crate) fn dir(&mut self, path: &str) -> Result<()> {
        self.header(path, tar::EntryType::Directory, 0, 0o755)
    }

    pub(crate) fn file(&mut self, path: &str, bytes: &[u8]) -> Result<()> {
        self.header(path, tar::EntryType::Regular, bytes.len() as u64, 0o644)?;
        self.out.write_all(bytes).map_err(Error::Write)?;
        self.pad(bytes.len() as u64)
    }

    /// Streams `size` bytes of `src` as a member; returns their digest and
    /// how many there were, for the caller to check.
    pub(crate) fn stream(
        &mut self,
        path: &str,
        size: u64,
        src: impl Read,
        what: &str,
    ) -> Result<(Digest, u64)> {
        self.header(path, tar::EntryType::Regular, size, 0o644)?;
        let mut hashed = Sha256Writer::new(&mut self.out);
        let on_read = |source| Error::Read {
            what: what.to_string(),
            source,
        };
        copy_with(&mut src.take(size), &mut hashed, on_read, Error::Write)?;
        let (_, digest, written) = hashed.finish();
        self.pad(written)?;
        Ok((digest, written))
    }

    /// Writes the end-of-archive marker and flushes.
    pub(crate) fn finish(mut self) -> Result<()> {
        self.out
            .write_all(&[0u8; 2 * BLOCK as usize])
            .map_err(Error::Write)?;
        self.out.flush().map_err(Error::Write)
    }

    fn header(&mut self, path: &str, kind: tar::EntryType, size: u64, mode: u32) -> Result<()> {
        let mut h = tar::Header::new_ustar();
        h.set_path(path).map_err(Error::Write)?;
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        self.out.write_all(h.as_bytes()).map_err(Error::Write)
    }

    /// Zero-fills the last block of a member of `len` bytes.
    fn pad(&mut self, len: u64) -> Result<()> {
        let rest = (BLOCK - len % BLOCK) % BLOCK;
        io::copy(&mut io::repeat(0).take(rest), &mut self.out)
            .map(drop)
            .map_err(Error::Write)
    }
}
