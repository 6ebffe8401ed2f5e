//! Content checksums for cache keys, in the spirit of BuildKit's contenthash:
//! a digest over path, type, mode, owner, link target and content sha256 of
//! exactly the selected entries, never mtimes. File contents are hashed in
//! parallel and memoised in a persistent stat-keyed cache.

use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result, io_err};
use crate::walk::{Entry, FileKind};

/// First line of a cache file; a mismatch discards the file's contents.
const CACHE_HEADER: &str = "kiln-context-hash-cache 1";
/// Entries gathered before their contents are hashed, bounding memory.
const BATCH: usize = 4096;
/// Most threads hashing file contents at once: reading is I/O-bound, and more threads
/// only compete with the build's other work.
const MAX_HASH_THREADS: usize = 4;

/// Stat fields that change whenever a file's content may have: ctime and
/// inode catch rewrites that restore size and mtime (moby/buildkit#4817).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileKey {
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    ino: u64,
    dev: u64,
}

impl FileKey {
    fn of(meta: &Metadata) -> Self {
        Self {
            size: meta.size(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
            ino: meta.ino(),
            dev: meta.dev(),
        }
    }
}

/// Counters describing how a cache served checksum requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Files whose digest came from the cache.
    pub hits: u64,
    /// Files whose content had to be read.
    pub files_read: u64,
}

/// Per-context memo of file content digests, persisted to one file.
#[derive(Debug)]
pub struct HashCache {
    path: PathBuf,
    entries: HashMap<String, (FileKey, [u8; 32])>,
    stats: CacheStats,
}

impl HashCache {
    /// Loads the cache at `path`. A missing or unreadable-format file yields
    /// an empty cache: a cache must never be a reason for a build to fail.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let entries = match File::open(&path) {
            Ok(file) => load(BufReader::new(file)).map_err(io_err("reading", &path))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => HashMap::new(),
            Err(e) => return Err(io_err("opening", &path)(e)),
        };
        Ok(Self {
            path,
            entries,
            stats: CacheStats::default(),
        })
    }

    /// Writes the cache atomically (temp file + rename) next to its path;
    /// a cache that read no file since it was loaded is already on disk as it is.
    pub fn save(&self) -> Result<()> {
        if self.stats.files_read == 0 && self.path.exists() {
            return Ok(());
        }
        let dir = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io_err("creating", dir))?;
        let tmp_path = tmp.path().to_path_buf();
        self.write_to(&mut io::BufWriter::new(tmp.as_file_mut()))
            .map_err(io_err("writing", &tmp_path))?;
        tmp.persist(&self.path)
            .map_err(|e| io_err("replacing", &self.path)(e.error))?;
        Ok(())
    }

    /// Counters since this cache was opened.
    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        writeln!(out, "{CACHE_HEADER}")?;
        for (path, (k, sha)) in &self.entries {
            writeln!(
                out,
                "{} {} {} {} {} {} {}",
                hex::encode(path),
                k.size,
                k.mtime_ns,
                k.ctime_ns,
                k.ino,
                k.dev,
                hex::encode(sha)
            )?;
        }
        out.flush()
    }

    fn lookup(&mut self, path: &str, key: FileKey) -> Option<[u8; 32]> {
        let hit = self
            .entries
            .get(path)
            .filter(|(k, _)| *k == key)
            .map(|(_, sha)| *sha);
        if hit.is_some() {
            self.stats.hits += 1;
        }
        hit
    }
}

fn load(reader: impl BufRead) -> io::Result<HashMap<String, (FileKey, [u8; 32])>> {
    let mut lines = reader.lines();
    let mut entries = HashMap::new();
    if lines.next().transpose()?.as_deref() != Some(CACHE_HEADER) {
        return Ok(entries);
    }
    for line in lines {
        if let Some((path, record)) = parse_line(&line?) {
            entries.insert(path, record);
        }
    }
    Ok(entries)
}

fn parse_line(line: &str) -> Option<(String, (FileKey, [u8; 32]))> {
    let f: Vec<&str> = line.split(' ').collect();
    let [path, size, mtime, ctime, ino, dev, sha] = f.as_slice() else {
        return None;
    };
    let path = String::from_utf8(hex::decode(path).ok()?).ok()?;
    let key = FileKey {
        size: size.parse().ok()?,
        mtime_ns: mtime.parse().ok()?,
        ctime_ns: ctime.parse().ok()?,
        ino: ino.parse().ok()?,
        dev: dev.parse().ok()?,
    };
    let mut digest = [0u8; 32];
    hex::decode_to_slice(sha, &mut digest).ok()?;
    Some((path, (key, digest)))
}

/// Accumulates walked entries and folds them into the running digest in
/// batches, hashing uncached file contents in parallel.
pub(crate) struct Summer<'a> {
    root: &'a Path,
    cache: &'a mut HashCache,
    digest: Sha256,
    batch: Vec<Entry>,
}

impl<'a> Summer<'a> {
    pub(crate) fn new(root: &'a Path, cache: &'a mut HashCache) -> Self {
        let mut digest = Sha256::new();
        field(&mut digest, b"kiln-context-checksum-v1");
        Self {
            root,
            cache,
            digest,
            batch: Vec::new(),
        }
    }

    /// Starts a new selected source; its name is part of the key.
    pub(crate) fn source(&mut self, rel_path: &str, kind: FileKind) -> Result<()> {
        self.flush()?;
        field(&mut self.digest, b"source");
        field(&mut self.digest, rel_path.as_bytes());
        field(&mut self.digest, kind.tag().as_bytes());
        Ok(())
    }

    pub(crate) fn add(&mut self, entry: &Entry) -> Result<()> {
        self.batch.push(entry.clone());
        if self.batch.len() >= BATCH {
            self.flush()?;
        }
        Ok(())
    }

    pub(crate) fn finish(mut self) -> Result<String> {
        self.flush()?;
        Ok(format!("sha256:{}", hex::encode(self.digest.finalize())))
    }

    fn flush(&mut self) -> Result<()> {
        let batch = std::mem::take(&mut self.batch);
        let contents = self.contents(&batch)?;
        for (entry, sha) in batch.iter().zip(contents) {
            record(&mut self.digest, self.root, entry, sha)?;
        }
        Ok(())
    }

    /// Content digests for the batch's regular files, cache first.
    fn contents(&mut self, batch: &[Entry]) -> Result<Vec<Option<[u8; 32]>>> {
        let mut out = vec![None; batch.len()];
        let mut misses = Vec::new();
        for (i, entry) in batch.iter().enumerate() {
            if entry.kind != FileKind::File {
                continue;
            }
            let key = FileKey::of(&entry.metadata);
            match self.cache.lookup(&entry.context_path, key) {
                Some(sha) => out[i] = Some(sha),
                None => misses.push(i),
            }
        }
        let hashed = hash_parallel(self.root, batch, &misses)?;
        for (i, sha) in misses.into_iter().zip(hashed) {
            let entry = &batch[i];
            let key = FileKey::of(&entry.metadata);
            self.cache
                .entries
                .insert(entry.context_path.clone(), (key, sha));
            self.cache.stats.files_read += 1;
            out[i] = Some(sha);
        }
        Ok(out)
    }
}

/// Appends one entry's record: path, type, mode, owner, then content digest,
/// link target or device number.
fn record(digest: &mut Sha256, root: &Path, entry: &Entry, sha: Option<[u8; 32]>) -> Result<()> {
    let meta = &entry.metadata;
    field(digest, entry.rel.as_bytes());
    field(digest, entry.kind.tag().as_bytes());
    field(digest, &meta.mode().to_le_bytes());
    field(digest, &meta.uid().to_le_bytes());
    field(digest, &meta.gid().to_le_bytes());
    match entry.kind {
        FileKind::File => field(digest, &sha.unwrap_or_default()),
        FileKind::Symlink => {
            let target = crate::resolve::read_link_str(root, &entry.context_path)?;
            field(digest, target.as_bytes());
        }
        FileKind::Other => field(digest, &meta.rdev().to_le_bytes()),
        FileKind::Dir => field(digest, b""),
    }
    Ok(())
}

/// Length-prefixed write, so no field boundary is ambiguous.
fn field(digest: &mut Sha256, bytes: &[u8]) {
    digest.update((bytes.len() as u64).to_le_bytes());
    digest.update(bytes);
}

/// Hashes `batch[i]` for each `i` in `which`, on up to [`MAX_HASH_THREADS`] threads (the
/// cores there are, at most).
fn hash_parallel(root: &Path, batch: &[Entry], which: &[usize]) -> Result<Vec<[u8; 32]>> {
    let workers = thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, MAX_HASH_THREADS)
        .min(which.len());
    let next = AtomicUsize::new(0);
    let mut results: Vec<Option<Result<[u8; 32]>>> = (0..which.len()).map(|_| None).collect();
    thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&i) = which.get(n) else {
                            return done;
                        };
                        done.push((n, hash_file(root, &batch[i].context_path)));
                    }
                })
            })
            .collect();
        for handle in handles {
            for (n, result) in handle.join().unwrap_or_default() {
                results[n] = Some(result);
            }
        }
    });
    results
        .into_iter()
        .zip(which)
        .map(|(r, &i)| r.unwrap_or_else(|| Err(worker_died(root, &batch[i]))))
        .collect()
}

fn worker_died(root: &Path, entry: &Entry) -> Error {
    let path = root.join(&entry.context_path);
    io_err("hashing", &path)(io::Error::other("hashing thread failed"))
}

/// Streams one file through sha256, refusing to follow a final symlink.
fn hash_file(root: &Path, rel: &str) -> Result<[u8; 32]> {
    let path = root.join(rel);
    let mut file = crate::walk::open_no_follow(root, rel)?;
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut hasher).map_err(io_err("reading", &path))?;
    Ok(hasher.finalize().into())
}
