//! Staging layer content into the store without committing it.
//!
//! A member's role is only known once `manifest.json`/`index.json` (often the
//! last members) have been read, so content is classified by sniffing and
//! every layer-looking member is streamed into an uncommitted [`BlobWriter`]
//! in one pass: uncompressed tars are gzip-compressed while their diff ID is
//! hashed; gzip streams are kept byte-for-byte while being inflated to hash
//! their diff ID; zstd streams are recompressed to gzip, since the store
//! keeps gzip layers. Committing waits until the digests have been checked.

use std::io::{self, Read, Write};

use flate2::Compression;
use flate2::write::{GzEncoder, MultiGzDecoder};
use kiln_content::{BlobWriter, ContentStore, Digest, Sha256Writer};

use crate::error::{Error, Result, read_err};
use crate::hash::HashingReader;

/// Tar block size; a tar stream starts with one header block.
const BLOCK: usize = 512;
/// Offset and length of the checksum field in a tar header.
const CKSUM: std::ops::Range<usize> = 148..156;
/// Largest non-layer member (config, manifest, index) kept in memory.
pub(crate) const MAX_META: u64 = 8 << 20;

/// What a member's first bytes say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Tar,
    Gzip,
    Zstd,
    Other,
}

/// Classifies content from its first block (or less, if shorter).
pub(crate) fn sniff(head: &[u8]) -> Kind {
    if head.starts_with(&[0x1f, 0x8b]) {
        Kind::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Kind::Zstd
    } else if head.len() == BLOCK && is_tar_header(head) {
        Kind::Tar
    } else {
        Kind::Other
    }
}

/// A tar stream starts with a header whose checksum is valid, or with the
/// all-zero end-of-archive block (an empty layer).
fn is_tar_header(block: &[u8]) -> bool {
    if block.iter().all(|b| *b == 0) {
        return true;
    }
    let field = &block[CKSUM];
    let mut digits = field
        .iter()
        .copied()
        .skip_while(|b| *b == b' ')
        .take_while(u8::is_ascii_digit);
    let Some(stored) = digits.try_fold(0u32, |acc, d| {
        acc.checked_mul(8)?.checked_add(u32::from(d - b'0'))
    }) else {
        return false;
    };
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if CKSUM.contains(&i) {
                u32::from(b' ')
            } else {
                u32::from(*b)
            }
        })
        .sum();
    sum == stored
}

/// Reads until `buf` is full or the reader ends; returns the bytes read.
pub(crate) fn read_head(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// A layer written to a temp blob in the store, waiting to be verified.
#[derive(Debug)]
pub(crate) struct StagedLayer {
    blob: BlobWriter,
    /// Digest of the uncompressed tar, or why inflating the source failed.
    pub(crate) diff_id: std::result::Result<Digest, String>,
    /// Digest of the source bytes when the blob is a conversion of them
    /// (for a tar source it is the diff ID); `None` when the source is kept
    /// verbatim, whose digest the store checks at commit.
    pub(crate) source_digest: Option<Digest>,
    /// Size of the source bytes.
    pub(crate) source_size: u64,
}

impl StagedLayer {
    /// Publishes the gzip blob; `expected` is checked by the store first.
    pub(crate) fn commit(self, expected: Option<&Digest>) -> Result<(Digest, u64)> {
        Ok(self.blob.commit(expected)?)
    }
}

/// Stages a layer from `src` whose first bytes were sniffed as `kind`.
/// `what` names the source in errors.
pub(crate) fn stage_layer(
    store: &ContentStore,
    kind: Kind,
    src: impl Read,
    what: &str,
) -> Result<StagedLayer> {
    match kind {
        Kind::Tar => compress_tar(store, src, what),
        Kind::Gzip => keep_gzip(store, src, what),
        Kind::Zstd => recompress_zstd(store, src, what),
        Kind::Other => Err(Error::CorruptLayer {
            path: what.to_string(),
            reason: "neither a tar stream nor gzip or zstd".into(),
        }),
    }
}

/// Gzip-compresses a tar deterministically (fixed level, zero mtime, no
/// name) while hashing the uncompressed bytes: the diff ID.
fn compress_tar(store: &ContentStore, mut src: impl Read, what: &str) -> Result<StagedLayer> {
    let mut out = gzip_writer(store)?;
    copy(&mut src, &mut out, what)?;
    let (gz, diff_id, size) = out.finish();
    let blob = gz.finish().map_err(|e| write_err(e, what))?;
    Ok(StagedLayer {
        blob,
        source_digest: Some(diff_id.clone()),
        diff_id: Ok(diff_id),
        source_size: size,
    })
}

/// Inflates zstd and compresses to gzip, hashing the zstd bytes (checked
/// against the descriptor) and the tar (the diff ID) on the way. A decode
/// failure is remembered, like a gzip one, and the rest of the member is
/// still consumed.
fn recompress_zstd(store: &ContentStore, src: impl Read, what: &str) -> Result<StagedLayer> {
    let mut source = HashingReader::new(src);
    let mut out = gzip_writer(store)?;
    let decoded = zstd::stream::read::Decoder::new(&mut source)
        .map_err(|e| read_err(e, what))
        .and_then(|mut dec| copy(&mut dec, &mut out, what));
    let diff_id = match decoded {
        Ok(()) => Ok(()),
        Err(Error::Read { source: e, .. }) => Err(e.to_string()),
        Err(Error::Truncated(reason)) => Err(reason),
        Err(other) => return Err(other),
    };
    io::copy(&mut source, &mut io::sink()).map_err(|e| read_err(e, what))?;
    let (gz, tar_digest, _) = out.finish();
    let blob = gz.finish().map_err(|e| write_err(e, what))?;
    let (source_digest, source_size) = source.finish();
    Ok(StagedLayer {
        blob,
        diff_id: diff_id.map(|()| tar_digest),
        source_digest: Some(source_digest),
        source_size,
    })
}

/// A blob writer behind a deterministic gzip encoder, hashing its input.
fn gzip_writer(store: &ContentStore) -> Result<Sha256Writer<GzEncoder<BlobWriter>>> {
    Ok(Sha256Writer::new(GzEncoder::new(
        store.writer()?,
        Compression::default(),
    )))
}

/// Keeps a gzip layer as is while inflating a copy to hash the diff ID.
fn keep_gzip(store: &ContentStore, mut src: impl Read, what: &str) -> Result<StagedLayer> {
    let mut tee = InflateTee {
        blob: store.writer()?,
        inflate: Some(MultiGzDecoder::new(Sha256Writer::new(io::sink()))),
        error: None,
        written: 0,
    };
    copy(&mut src, &mut tee, what)?;
    let (blob, diff_id, size) = tee.finish();
    Ok(StagedLayer {
        blob,
        diff_id,
        source_digest: None,
        source_size: size,
    })
}

/// Copies `src` into `dst`, telling read failures (the source is bad) from
/// write failures (the store is).
fn copy(src: &mut impl Read, dst: &mut impl Write, what: &str) -> Result<()> {
    copy_with(src, dst, |e| read_err(e, what), |e| write_err(e, what)).map(drop)
}

/// `io::copy` that keeps read and write failures apart; returns the bytes
/// copied.
pub(crate) fn copy_with(
    src: &mut impl Read,
    dst: &mut impl Write,
    on_read: impl Fn(io::Error) -> Error,
    on_write: impl Fn(io::Error) -> Error,
) -> Result<u64> {
    let mut buf = vec![0u8; 128 * 1024];
    let mut total = 0;
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(on_read(e)),
        };
        dst.write_all(&buf[..n]).map_err(&on_write)?;
        total += n as u64;
    }
}

fn write_err(source: io::Error, what: &str) -> Error {
    Error::Stage {
        what: what.to_string(),
        source,
    }
}

/// Writes bytes to the blob and to an inflater; an inflate failure is
/// remembered rather than raised, since the member may not be a layer.
struct InflateTee {
    blob: BlobWriter,
    inflate: Option<MultiGzDecoder<Sha256Writer<io::Sink>>>,
    error: Option<String>,
    written: u64,
}

impl InflateTee {
    fn finish(self) -> (BlobWriter, std::result::Result<Digest, String>, u64) {
        let diff_id = match (self.error, self.inflate) {
            (Some(e), _) => Err(e),
            (None, Some(dec)) => dec
                .finish()
                .map(|hashed| hashed.finish().1)
                .map_err(|e| e.to_string()),
            (None, None) => Err("gzip stream could not be inflated".into()),
        };
        (self.blob, diff_id, self.written)
    }
}

impl Write for InflateTee {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.blob.write(buf)?;
        self.written += n as u64;
        let failed = match &mut self.inflate {
            Some(dec) => dec.write_all(&buf[..n]).err(),
            None => None,
        };
        if let Some(e) = failed {
            self.error = Some(e.to_string());
            self.inflate = None;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.blob.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_with_file() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_size(3);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "a.txt", &b"abc"[..]).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn sniff_tells_formats_apart() {
        let t = tar_with_file();
        assert_eq!(sniff(&t[..BLOCK]), Kind::Tar);
        assert_eq!(sniff(&[0u8; BLOCK]), Kind::Tar);
        assert_eq!(sniff(&[0x1f, 0x8b, 8, 0]), Kind::Gzip);
        assert_eq!(sniff(&[0x28, 0xb5, 0x2f, 0xfd]), Kind::Zstd);
        assert_eq!(sniff(br#"{"a":1}"#), Kind::Other);
        let mut bad = t[..BLOCK].to_vec();
        bad[0] ^= 1;
        assert_eq!(sniff(&bad), Kind::Other);
    }

    #[test]
    fn compressing_keeps_the_diff_id_and_is_deterministic() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let t = tar_with_file();
        let a = stage_layer(&store, Kind::Tar, &t[..], "t").unwrap();
        let b = stage_layer(&store, Kind::Tar, &t[..], "t").unwrap();
        let want = kiln_content::sha256_digest(&t);
        assert_eq!(a.diff_id.as_ref().unwrap(), &want);
        assert_eq!(a.source_digest.as_ref(), Some(&want));
        let (da, _) = a.commit(None).unwrap();
        let (db, _) = b.commit(None).unwrap();
        assert_eq!(da, db);
        // The committed gzip blob is then recognised as gzip with the same diff ID.
        let gz = std::fs::read(store.blob_path(&da)).unwrap();
        let again = stage_layer(&store, sniff(&gz), &gz[..], "g").unwrap();
        assert_eq!(again.diff_id.unwrap(), want);
        assert_eq!(again.source_size, gz.len() as u64);
    }

    #[test]
    fn zstd_is_recompressed_to_gzip_with_both_digests() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let t = tar_with_file();
        let zst = zstd::encode_all(&t[..], 3).unwrap();
        let staged = stage_layer(&store, sniff(&zst), &zst[..], "z").unwrap();
        assert_eq!(
            staged.diff_id.as_ref().unwrap(),
            &kiln_content::sha256_digest(&t)
        );
        assert_eq!(
            staged.source_digest,
            Some(kiln_content::sha256_digest(&zst))
        );
        assert_eq!(staged.source_size, zst.len() as u64);
        let (d, _) = staged.commit(None).unwrap();
        let from_tar = stage_layer(&store, Kind::Tar, &t[..], "t").unwrap();
        assert_eq!(from_tar.commit(None).unwrap().0, d);

        let cut = &zst[..zst.len() - 4];
        let bad = stage_layer(&store, Kind::Zstd, cut, "z").unwrap();
        assert!(bad.diff_id.is_err());
        assert_eq!(bad.source_size, cut.len() as u64);
    }

    #[test]
    fn corrupt_gzip_is_reported_not_hidden() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let staged = stage_layer(&store, Kind::Tar, &tar_with_file()[..], "t").unwrap();
        let (d, _) = staged.commit(None).unwrap();
        let gz = std::fs::read(store.blob_path(&d)).unwrap();
        let cut = &gz[..gz.len() - 6];
        assert!(
            stage_layer(&store, Kind::Gzip, cut, "g")
                .unwrap()
                .diff_id
                .is_err()
        );
        let mut garbage = gz.clone();
        garbage.extend_from_slice(b"trailing junk");
        assert!(
            stage_layer(&store, Kind::Gzip, &garbage[..], "g")
                .unwrap()
                .diff_id
                .is_err()
        );
    }
}
