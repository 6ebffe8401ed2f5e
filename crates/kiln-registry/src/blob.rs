//! Streaming blob downloads: straight into the content store, verified on
//! commit, resumed with `Range` after a dropped connection (restarted when
//! the server ignores the range), never larger than the descriptor says.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread;

use kiln_content::{BlobWriter, ContentStore, Digest};
use oci_spec::image::Descriptor;

use crate::error::{Error, Result};
use crate::transport::{MAX_ATTEMPTS, Req, Session, backoff, lock};

/// Read buffer for blob bodies.
const BUF_SIZE: usize = 64 * 1024;

/// A download in progress: bytes already in the (uncommitted) writer.
struct Partial {
    writer: BlobWriter,
    written: u64,
}

/// How one GET ended.
enum Outcome {
    /// All `size` bytes arrived.
    Complete,
    /// The connection dropped; what arrived so far is kept.
    Dropped(String),
}

/// Downloads `desc` into `content` unless it is already there. Concurrent pulls of the same
/// blob (other threads, other kiln processes on the store) share one download: the first holds
/// the blob's lock, the others wait and then find it committed.
pub(crate) fn fetch(session: &Session, content: &ContentStore, desc: &Descriptor) -> Result<()> {
    let digest = desc.digest();
    if content.contains(digest) {
        return Ok(());
    }
    let lock = DownloadLock::acquire(content, digest).map_err(|e| session.target.content(e))?;
    if content.contains(digest) {
        return Ok(());
    }
    download(session, content, desc)?;
    lock.release();
    Ok(())
}

/// An exclusive `flock` on `<content root>/locks/<hex>`, held while one blob downloads.
struct DownloadLock {
    file: std::fs::File,
    path: std::path::PathBuf,
}

impl DownloadLock {
    fn acquire(content: &ContentStore, digest: &Digest) -> kiln_content::Result<Self> {
        let dir = content.root().join("locks");
        let path = dir.join(digest.digest());
        let io = |e| kiln_content::Error::Io {
            action: "locking",
            path: path.clone(),
            source: e,
        };
        std::fs::create_dir_all(&dir).map_err(io)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io)?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| io(e.into()))?;
        Ok(Self { file, path })
    }

    /// Removes the lock file once the blob is committed, so locks don't pile up; a waiter
    /// still holding the unlinked file re-checks the store and finds the blob.
    fn release(self) {
        let _ = std::fs::remove_file(&self.path);
        drop(self.file);
    }
}

/// Streams one blob into the store, resuming after dropped connections.
fn download(session: &Session, content: &ContentStore, desc: &Descriptor) -> Result<()> {
    let digest = desc.digest();
    let mut partial = new_partial(session, content)?;
    let mut drops = 0;
    loop {
        match fetch_once(session, content, desc, &mut partial)? {
            Outcome::Complete => break,
            Outcome::Dropped(why) => {
                drops += 1;
                if drops >= MAX_ATTEMPTS {
                    return Err(session.target.unreachable(format!("blob {digest}: {why}")));
                }
                tracing::debug!(%digest, written = partial.written, %why, "blob download dropped; resuming");
                thread::sleep(backoff(drops));
            }
        }
    }
    partial
        .writer
        .commit(Some(digest))
        .map_err(|e| session.target.content(e))?;
    Ok(())
}

fn new_partial(session: &Session, content: &ContentStore) -> Result<Partial> {
    let writer = content.writer().map_err(|e| session.target.content(e))?;
    Ok(Partial { writer, written: 0 })
}

/// One GET, from `partial.written` on.
fn fetch_once(
    session: &Session,
    content: &ContentStore,
    desc: &Descriptor,
    partial: &mut Partial,
) -> Result<Outcome> {
    let digest = desc.digest();
    let mut req = Req::new("GET", session.url(&format!("blobs/{digest}")));
    if partial.written > 0 {
        req = req.header("Range", format!("bytes={}-", partial.written));
    }
    let resp = session.send(&req)?;
    match resp.status() {
        200 if partial.written > 0 => {
            // The server ignored the range: start over from byte 0.
            *partial = new_partial(session, content)?;
        }
        200 => {}
        206 if starts_at(&resp, partial.written) => {}
        206 | 416 => {
            *partial = new_partial(session, content)?;
            return Ok(Outcome::Dropped(format!(
                "unusable range reply {}",
                resp.status()
            )));
        }
        404 => return Err(session.target.blob_unknown(digest)),
        status => {
            let message = crate::transport::error_message(resp);
            return Err(session.target.protocol(req_line(digest), status, message));
        }
    }
    copy_body(session, content, desc, resp.into_reader(), partial)
}

fn req_line(digest: &Digest) -> String {
    format!("GET blobs/{digest}")
}

/// Whether a 206 reply's `Content-Range: bytes START-END/TOTAL` starts at `offset`.
fn starts_at(resp: &ureq::Response, offset: u64) -> bool {
    resp.header("content-range")
        .and_then(|v| v.trim().strip_prefix("bytes "))
        .and_then(|v| v.split('-').next())
        .and_then(|start| start.trim().parse::<u64>().ok())
        == Some(offset)
}

/// Copies the body into the writer; a read error is a dropped connection,
/// a write error is fatal, more bytes than announced is an error.
fn copy_body(
    session: &Session,
    content: &ContentStore,
    desc: &Descriptor,
    mut body: impl Read,
    partial: &mut Partial,
) -> Result<Outcome> {
    let size = desc.size();
    let mut buf = vec![0u8; BUF_SIZE];
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) if partial.written >= size => return Ok(Outcome::Complete),
            Ok(0) => return Ok(Outcome::Dropped("connection closed early".into())),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Ok(Outcome::Dropped(e.to_string())),
        };
        if partial.written + n as u64 > size {
            return Err(Error::SizeMismatch {
                reference: session.target.reference.clone(),
                registry: session.target.registry.clone(),
                digest: desc.digest().to_string(),
                expected: size,
            });
        }
        let chunk = buf.get(..n).unwrap_or_default();
        partial.writer.write_all(chunk).map_err(|e| {
            session.target.content(kiln_content::Error::Io {
                action: "writing blob into",
                path: content.root().join("ingest"),
                source: e,
            })
        })?;
        partial.written += n as u64;
    }
}

/// `descs` without repeated digests (a layer listed twice, such as an empty
/// one, is transferred once; two threads never race on the same blob).
pub(crate) fn unique(descs: impl IntoIterator<Item = Descriptor>) -> Vec<Descriptor> {
    let mut seen = std::collections::HashSet::new();
    descs
        .into_iter()
        .filter(|d| seen.insert(d.digest().to_string()))
        .collect()
}

/// Runs `job` over `items` on up to `parallelism` threads; stops handing
/// out work after the first error, which is returned.
pub(crate) fn for_each_parallel<T: Sync>(
    items: &[T],
    parallelism: usize,
    job: impl Fn(&T) -> Result<()> + Sync,
) -> Result<()> {
    let queue = Mutex::new(items.iter());
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    let worker = || {
        while !failed.load(Ordering::Relaxed) {
            let Some(item) = lock(&queue).next() else {
                return;
            };
            if let Err(e) = job(item) {
                failed.store(true, Ordering::Relaxed);
                lock(&first_error).get_or_insert(e);
            }
        }
    };
    thread::scope(|s| {
        for _ in 0..parallelism.clamp(1, items.len().max(1)) {
            s.spawn(worker);
        }
    });
    match first_error
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
    {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
