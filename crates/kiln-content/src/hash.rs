//! Streaming sha256 helpers shared with the layer code.

use std::io::{self, Write};

use oci_spec::image::{Digest, Sha256Digest};
use sha2::{Digest as _, Sha256};

/// A [`Write`] adapter that hashes and counts every byte passed to the inner
/// writer, so a digest comes out of the same pass that writes the data.
#[derive(Debug)]
pub struct Sha256Writer<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> Sha256Writer<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            written: 0,
        }
    }

    /// Returns the inner writer, the digest and the byte count.
    pub fn finish(self) -> (W, Digest, u64) {
        let digest = digest_of_hash(self.hasher.finalize().into());
        (self.inner, digest, self.written)
    }
}

impl<W: Write> Write for Sha256Writer<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        let written = buf
            .get(..n)
            .ok_or_else(|| io::Error::other("inner writer claimed more bytes than given"))?;
        self.hasher.update(written);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The sha256 digest of an in-memory byte string.
pub fn sha256_digest(bytes: &[u8]) -> Digest {
    digest_of_hash(Sha256::digest(bytes).into())
}

fn digest_of_hash(hash: [u8; 32]) -> Digest {
    let hex = hex::encode(hash);
    // 64 lowercase hex characters always form a valid sha256 digest.
    match hex.parse::<Sha256Digest>() {
        Ok(d) => d.into(),
        Err(e) => unreachable!("hex-encoded sha256 rejected: {e}"),
    }
}
