//! Layer content into the store, in one streaming pass per member.
//!
//! A member's role is only known once `manifest.json`/`index.json` (often the
//! last members) have been read, so content is classified by sniffing and
//! every layer-looking member goes to the store as it streams past:
//! uncompressed tars are gzip-compressed while their diff ID is hashed; gzip
//! streams are kept byte-for-byte while being inflated to hash their diff
//! ID; zstd streams are recompressed to gzip, since the store keeps gzip
//! layers.
//!
//! Each blob is committed under the digest of its own content, and a member
//! named `blobs/sha256/<hex>` only once its content matched that name; a
//! member whose compression is corrupt is not committed at all. Holding
//! every layer of a large archive uncommitted until the end would cost an
//! open file and a write buffer each; instead, an import that fails later
//! leaves only complete, verified layer blobs for the store's GC.

use std::io::{self, Read, Write};

use flate2::Compression;
use flate2::write::{GzEncoder, MultiGzDecoder};
use kiln_content::{BlobWriter, ContentStore, Digest, Sha256Writer};

use crate::error::{Error, Result, mismatch, read_err};
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

/// A layer blob in the store and what it was made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LayerBlob {
    /// The gzip blob in the store.
    pub(crate) digest: Digest,
    pub(crate) size: u64,
    /// Digest of the uncompressed tar.
    pub(crate) diff_id: Digest,
    /// Digest and size of the member as it was in the source.
    pub(crate) source_digest: Digest,
    pub(crate) source_size: u64,
}

/// A staged layer, or why the member is not one (corrupt compression). The
/// reason becomes an error only if an image needs the member.
pub(crate) type Staged = std::result::Result<LayerBlob, String>;

/// Stages a layer from `src` whose first bytes were sniffed as `kind`.
/// `named` is the digest the source claims (from its `blobs/` path); `what`
/// names it in errors.
pub(crate) fn stage_layer(
    store: &ContentStore,
    kind: Kind,
    src: impl Read,
    named: Option<&Digest>,
    what: &str,
) -> Result<Staged> {
    let pending = match kind {
        Kind::Tar => compress_tar(store, src, what)?,
        Kind::Gzip => keep_gzip(store, src, what)?,
        Kind::Zstd => recompress_zstd(store, src, what)?,
        Kind::Other => return Ok(Err("neither a tar stream nor gzip or zstd".into())),
    };
    pending.publish(named, what)
}

/// A layer streamed into a temp blob, not yet committed.
struct Pending {
    blob: BlobWriter,
    /// Digest of the uncompressed tar, or why decompressing failed.
    diff_id: std::result::Result<Digest, String>,
    /// Digest of the source when the blob is a conversion of it (for a tar
    /// it is the diff ID); `None` when kept verbatim: the store hashes it.
    source_digest: Option<Digest>,
    source_size: u64,
}

impl Pending {
    /// Commits the blob unless its compression is corrupt or its source
    /// does not match the digest it is named by.
    fn publish(self, named: Option<&Digest>, what: &str) -> Result<Staged> {
        let diff_id = match self.diff_id {
            Ok(d) => d,
            Err(reason) => return Ok(Err(reason)),
        };
        if let (Some(want), Some(actual)) = (named, &self.source_digest) {
            if want != actual {
                return Err(Error::DigestMismatch {
                    what: what.to_string(),
                    digests: mismatch(want, actual),
                });
            }
        }
        let verbatim = self.source_digest.is_none();
        let (digest, size) = self
            .blob
            .commit(named.filter(|_| verbatim))
            .map_err(|e| name_mismatch(e, what))?;
        Ok(Ok(LayerBlob {
            source_digest: self.source_digest.unwrap_or_else(|| digest.clone()),
            digest,
            size,
            diff_id,
            source_size: self.source_size,
        }))
    }
}

/// Names the archive member in a store-side digest mismatch.
fn name_mismatch(e: kiln_content::Error, what: &str) -> Error {
    match e {
        kiln_content::Error::DigestMismatch { expected, actual } => Error::DigestMismatch {
            what: what.to_string(),
            digests: mismatch(&expected, &actual),
        },
        other => other.into(),
    }
}

/// Gzip-compresses a tar deterministically (fixed level, zero mtime, no
/// name) while hashing the uncompressed bytes: the diff ID.
fn compress_tar(store: &ContentStore, mut src: impl Read, what: &str) -> Result<Pending> {
    let mut out = gzip_writer(store)?;
    copy(&mut src, &mut out, what)?;
    let (gz, diff_id, size) = out.finish();
    let blob = gz.finish().map_err(|e| write_err(e, what))?;
    Ok(Pending {
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
fn recompress_zstd(store: &ContentStore, src: impl Read, what: &str) -> Result<Pending> {
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
    Ok(Pending {
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
fn keep_gzip(store: &ContentStore, mut src: impl Read, what: &str) -> Result<Pending> {
    let mut tee = InflateTee {
        blob: store.writer()?,
        inflate: Some(MultiGzDecoder::new(Sha256Writer::new(io::sink()))),
        error: None,
        written: 0,
    };
    copy(&mut src, &mut tee, what)?;
    let (blob, diff_id, size) = tee.finish();
    Ok(Pending {
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

    fn store() -> (tempfile::TempDir, ContentStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        (dir, store)
    }

    fn stage(store: &ContentStore, src: &[u8], named: Option<&Digest>) -> Result<Staged> {
        let head = &src[..src.len().min(BLOCK)];
        stage_layer(store, sniff(head), src, named, "test")
    }

    #[test]
    fn compressing_keeps_the_diff_id_and_is_deterministic() {
        let (_dir, store) = store();
        let t = tar_with_file();
        let want = kiln_content::sha256_digest(&t);
        let a = stage(&store, &t, Some(&want)).unwrap().unwrap();
        let b = stage(&store, &t, None).unwrap().unwrap();
        assert_eq!(a, b);
        assert_eq!((&a.diff_id, &a.source_digest), (&want, &want));
        assert_eq!(a.source_size, t.len() as u64);
        // The committed gzip blob is recognised as gzip with the same diff ID.
        let gz = std::fs::read(store.blob_path(&a.digest)).unwrap();
        assert_eq!(gz.len() as u64, a.size);
        let again = stage(&store, &gz, Some(&a.digest)).unwrap().unwrap();
        assert_eq!(
            again,
            LayerBlob {
                source_size: a.size,
                source_digest: a.digest.clone(),
                ..a
            }
        );
    }

    #[test]
    fn a_source_must_match_its_name() {
        let (_dir, store) = store();
        let t = tar_with_file();
        let wrong = kiln_content::sha256_digest(b"other");
        let err = stage(&store, &t, Some(&wrong)).unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
        let gz = std::fs::read(store.blob_path(&stage(&store, &t, None).unwrap().unwrap().digest))
            .unwrap();
        let err = stage(&store, &gz, Some(&wrong)).unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
        assert_eq!(
            store.list().unwrap().len(),
            1,
            "only the good blob is committed"
        );
    }

    #[test]
    fn zstd_is_recompressed_to_gzip_with_both_digests() {
        let (_dir, store) = store();
        let t = tar_with_file();
        let zst = zstd::encode_all(&t[..], 3).unwrap();
        let zst_digest = kiln_content::sha256_digest(&zst);
        let staged = stage(&store, &zst, Some(&zst_digest)).unwrap().unwrap();
        assert_eq!(staged.diff_id, kiln_content::sha256_digest(&t));
        assert_eq!(
            (&staged.source_digest, staged.source_size),
            (&zst_digest, zst.len() as u64)
        );
        let from_tar = stage(&store, &t, None).unwrap().unwrap();
        assert_eq!(from_tar.digest, staged.digest);
    }

    #[test]
    fn corrupt_compression_is_reported_and_not_committed() {
        let (_dir, store) = store();
        let t = tar_with_file();
        let good = stage(&store, &t, None).unwrap().unwrap();
        let gz = std::fs::read(store.blob_path(&good.digest)).unwrap();
        let zst = zstd::encode_all(&t[..], 3).unwrap();
        let junk = [&gz[..], b"trailing junk"].concat();
        for bad in [&gz[..gz.len() - 6], &junk[..], &zst[..zst.len() - 4], b"{}"] {
            assert!(stage(&store, bad, None).unwrap().is_err());
        }
        assert_eq!(store.list().unwrap(), vec![good.digest]);
    }
}
