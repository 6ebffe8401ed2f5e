//! A reading-side sha256: hashes whatever passes through, for sources we
//! read rather than write (stored blobs on export, compressed layers that
//! are recompressed on import).

use std::io::{self, Read, Write};

use kiln_content::{Digest, Sha256Writer};

/// Hashes and counts the bytes read through it.
pub(crate) struct HashingReader<R> {
    inner: R,
    hash: Sha256Writer<io::Sink>,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self {
            inner,
            hash: Sha256Writer::new(io::sink()),
        }
    }

    /// The digest and byte count of everything read so far.
    pub(crate) fn finish(self) -> (Digest, u64) {
        let (_, digest, size) = self.hash.finish();
        (digest, size)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.write_all(&buf[..n])?;
        Ok(n)
    }
}
