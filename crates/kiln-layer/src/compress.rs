//! Layer compression: streaming encoders for writing and magic-byte
//! detection for reading.

use std::io::{self, BufReader, Read, Write};

use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

use crate::Compression;

/// Default gzip level: Go's `gzip.DefaultCompression`, which BuildKit uses.
const GZIP_LEVEL: u32 = 6;
/// Default zstd level: zstd's own default, as BuildKit uses.
const ZSTD_LEVEL: i32 = 3;

const PLAIN_BUF: usize = 64 * 1024;

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// A compressing writer for one of the layer media types.
pub(crate) enum Encoder<W: Write> {
    Gzip(GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
    Plain(W),
}

impl<W: Write> Encoder<W> {
    pub fn new(out: W, compression: Compression, level: Option<i32>) -> io::Result<Self> {
        Ok(match compression {
            Compression::Gzip => {
                let level = level.map_or(GZIP_LEVEL, |l| l.clamp(0, 9).unsigned_abs());
                Self::Gzip(GzEncoder::new(out, flate2::Compression::new(level)))
            }
            Compression::Zstd => Self::Zstd(zstd::stream::write::Encoder::new(
                out,
                level.unwrap_or(ZSTD_LEVEL),
            )?),
            Compression::None => Self::Plain(out),
        })
    }

    /// Writes the compression trailer and returns the underlying writer.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Self::Gzip(e) => e.finish(),
            Self::Zstd(e) => e.finish(),
            Self::Plain(mut w) => w.flush().map(|()| w),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Gzip(e) => e.write(buf),
            Self::Zstd(e) => e.write(buf),
            Self::Plain(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Gzip(e) => e.flush(),
            Self::Zstd(e) => e.flush(),
            Self::Plain(w) => w.flush(),
        }
    }
}

/// Wraps `r` in the decompressor its first bytes call for (gzip, zstd, or
/// none for a plain tar).
pub(crate) fn decompress<'a, R: Read + 'a>(
    mut r: R,
) -> io::Result<(Compression, Box<dyn Read + 'a>)> {
    let mut head = [0u8; 4];
    let mut n = 0;
    while n < head.len() {
        match r.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let seen = &head[..n];
    let whole = io::Cursor::new(seen.to_vec()).chain(r);
    Ok(if seen.starts_with(GZIP_MAGIC) {
        (Compression::Gzip, Box::new(MultiGzDecoder::new(whole)))
    } else if seen.starts_with(ZSTD_MAGIC) {
        (
            Compression::Zstd,
            Box::new(zstd::stream::read::Decoder::new(whole)?),
        )
    } else {
        // Tar headers are read 512 bytes at a time: batch the reads.
        (
            Compression::None,
            Box::new(BufReader::with_capacity(PLAIN_BUF, whole)),
        )
    })
}
