//! Where import reads from: a tar stream read once front to back
//! ([`ArchiveSource`]) or an OCI layout directory ([`DirSource`]).

use std::cell::Cell;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use kiln_content::ContentStore;

use crate::error::{Error, Result, read_err};
use crate::paths;
use crate::stage::{self, Kind, LayerBlob, MAX_META, Staged};

/// Total bytes of small members an archive may keep in memory.
const MAX_META_TOTAL: u64 = 64 << 20;
/// Read buffer for archive streams.
const IO_BUFFER: usize = 256 * 1024;
/// Longest chain of links followed before giving up (a loop).
const MAX_LINK_HOPS: usize = 32;

/// Files of an archive or layout, by normalised relative path.
pub(crate) trait Source {
    /// The path content is found under, after following links.
    fn canonical(&self, path: &str) -> Result<String>;
    /// Whether a file exists at `path`.
    fn exists(&self, path: &str) -> bool;
    /// A small document (JSON) at `path`.
    fn meta(&mut self, path: &str) -> Result<Vec<u8>>;
    /// The layer at canonical `path`, in the store.
    fn layer(&mut self, path: &str) -> Result<LayerBlob>;
}

/// A member of a tar archive after the single streaming pass.
#[derive(Debug)]
enum Member {
    Meta(Vec<u8>),
    Layer(Staged),
    /// Neither a layer nor small enough to keep in memory; an error only
    /// if something refers to it.
    Oversized,
    Link(String),
}

/// An archive read in one pass: layers already staged, small files in memory.
#[derive(Debug)]
pub(crate) struct ArchiveSource {
    members: HashMap<String, Member>,
}

impl ArchiveSource {
    /// Reads the whole archive (plain or gzip-compressed tar).
    pub(crate) fn read(store: &ContentStore, reader: impl Read) -> Result<Self> {
        let hit_eof = Cell::new(false);
        let tracked = EofTracker {
            inner: inflate_if_gzip(reader)?,
            hit_eof: &hit_eof,
        };
        let tar_err = |e: io::Error| match hit_eof.get() {
            true => Error::Truncated(format!("the archive ends inside a tar block: {e}")),
            false => read_err(e, "the archive"),
        };
        let mut members = HashMap::new();
        let mut meta_total = 0;
        let mut archive = tar::Archive::new(tracked);
        for entry in archive.entries().map_err(tar_err)? {
            let mut entry = entry.map_err(tar_err)?;
            if let Some((path, member)) = read_member(store, &mut entry, &mut meta_total)? {
                members.insert(path, member);
            }
        }
        if hit_eof.get() {
            return Err(Error::Truncated("no end-of-archive marker".into()));
        }
        Ok(Self { members })
    }
}

impl Source for ArchiveSource {
    fn canonical(&self, path: &str) -> Result<String> {
        let mut current = path.to_string();
        for _ in 0..MAX_LINK_HOPS {
            match self.members.get(&current) {
                Some(Member::Link(target)) => current = target.clone(),
                _ => return Ok(current),
            }
        }
        Err(Error::Unsupported {
            what: path.to_string(),
            reason: "link loop".into(),
        })
    }

    fn exists(&self, path: &str) -> bool {
        self.canonical(path)
            .is_ok_and(|p| matches!(self.members.get(&p), Some(m) if !matches!(m, Member::Link(_))))
    }

    fn meta(&mut self, path: &str) -> Result<Vec<u8>> {
        let key = self.canonical(path)?;
        match self.members.get(&key) {
            Some(Member::Meta(bytes)) => Ok(bytes.clone()),
            Some(Member::Layer(_)) => Err(Error::Unsupported {
                what: path.to_string(),
                reason: "expected a JSON document, found a tar stream".into(),
            }),
            Some(Member::Oversized) => Err(Error::TooLarge {
                what: path.to_string(),
                max: MAX_META,
            }),
            Some(Member::Link(_)) | None => Err(missing(path)),
        }
    }

    fn layer(&mut self, path: &str) -> Result<LayerBlob> {
        match self.members.get(path) {
            Some(Member::Layer(staged)) => usable(staged.clone(), path),
            Some(Member::Meta(_) | Member::Oversized) => Err(Error::CorruptLayer {
                path: path.to_string(),
                reason: "neither a tar stream nor gzip or zstd".into(),
            }),
            Some(Member::Link(_)) | None => Err(missing(path)),
        }
    }
}

/// Reads one tar entry; directories and special files carry nothing an
/// image needs and are skipped.
fn read_member<R: Read>(
    store: &ContentStore,
    entry: &mut tar::Entry<'_, R>,
    meta_total: &mut u64,
) -> Result<Option<(String, Member)>> {
    let path = paths::clean(&String::from_utf8_lossy(&entry.path_bytes()))?;
    let kind = entry.header().entry_type();
    let member = if kind.is_file() || kind.is_contiguous() {
        let size = entry.size();
        read_file(store, entry, size, &path, meta_total)?
    } else if kind.is_symlink() {
        Member::Link(paths::resolve_symlink(&path, &link_target(entry, &path)?)?)
    } else if kind.is_hard_link() {
        Member::Link(paths::clean(&link_target(entry, &path)?)?)
    } else {
        return Ok(None);
    };
    Ok(Some((path, member)))
}

fn link_target<R: Read>(entry: &tar::Entry<'_, R>, path: &str) -> Result<String> {
    match entry.link_name_bytes() {
        Some(target) => Ok(String::from_utf8_lossy(&target).into_owned()),
        None => Err(Error::Unsupported {
            what: path.to_string(),
            reason: "link without a target".into(),
        }),
    }
}

/// Classifies a regular file by its first block and consumes all of it.
fn read_file(
    store: &ContentStore,
    entry: &mut impl Read,
    size: u64,
    path: &str,
    meta_total: &mut u64,
) -> Result<Member> {
    let mut counted = Counting { inner: entry, n: 0 };
    let mut head = [0u8; 512];
    let len = stage::read_head(&mut counted, &mut head).map_err(|e| read_err(e, path))?;
    let kind = stage::sniff(&head[..len]);
    let mut src = (&head[..len]).chain(&mut counted);
    let member = match kind {
        Kind::Tar | Kind::Gzip | Kind::Zstd => {
            let named = paths::digest_of_blob_path(path);
            Member::Layer(stage::stage_layer(
                store,
                kind,
                &mut src,
                named.as_ref(),
                path,
            )?)
        }
        Kind::Other if size <= MAX_META && *meta_total + size <= MAX_META_TOTAL => {
            let mut bytes = Vec::new();
            src.read_to_end(&mut bytes).map_err(|e| read_err(e, path))?;
            *meta_total += bytes.len() as u64;
            Member::Meta(bytes)
        }
        Kind::Other => {
            io::copy(&mut src, &mut io::sink()).map_err(|e| read_err(e, path))?;
            Member::Oversized
        }
    };
    if counted.n != size {
        return Err(Error::Truncated(format!(
            "{path} ends after {} of {size} bytes",
            counted.n
        )));
    }
    Ok(member)
}

/// A staged layer, or the error saying why the member is not one.
fn usable(staged: Staged, path: &str) -> Result<LayerBlob> {
    staged.map_err(|reason| Error::CorruptLayer {
        path: path.to_string(),
        reason,
    })
}

fn missing(path: &str) -> Error {
    Error::MissingMember {
        path: path.to_string(),
    }
}

/// `docker load` accepts a compressed archive; so does kiln. Buffered, as
/// tar headers are read one 512-byte block at a time.
fn inflate_if_gzip<'a>(reader: impl Read + 'a) -> Result<Box<dyn Read + 'a>> {
    let mut reader = io::BufReader::with_capacity(IO_BUFFER, reader);
    let mut head = [0u8; 2];
    let len = stage::read_head(&mut reader, &mut head).map_err(|e| read_err(e, "the archive"))?;
    let joined = io::Cursor::new(head).take(len as u64).chain(reader);
    if stage::sniff(&head[..len]) == Kind::Gzip {
        Ok(Box::new(MultiGzDecoder::new(joined)))
    } else {
        Ok(Box::new(joined))
    }
}

/// Counts bytes read, to detect members cut short by a truncated archive.
struct Counting<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

/// Notes whether the stream ran dry: a complete tar stops at its zero
/// block, so hitting EOF means the end-of-archive marker is missing.
struct EofTracker<'f, R> {
    inner: R,
    hit_eof: &'f Cell<bool>,
}

impl<R: Read> Read for EofTracker<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.hit_eof.set(true);
        }
        Ok(n)
    }
}

/// An OCI image layout on disk; files are read only when needed, and
/// each layer is staged once however many images share it.
#[derive(Debug)]
pub(crate) struct DirSource<'s> {
    store: &'s ContentStore,
    root: PathBuf,
    staged: HashMap<String, Staged>,
}

impl<'s> DirSource<'s> {
    pub(crate) fn new(store: &'s ContentStore, root: &Path) -> Self {
        Self {
            store,
            root: root.to_path_buf(),
            staged: HashMap::new(),
        }
    }

    fn open(&self, path: &str) -> Result<File> {
        let full = self.root.join(path);
        File::open(&full).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => missing(&full.display().to_string()),
            _ => read_err(e, full.display().to_string()),
        })
    }
}

impl Source for DirSource<'_> {
    fn canonical(&self, path: &str) -> Result<String> {
        Ok(path.to_string())
    }

    fn exists(&self, path: &str) -> bool {
        self.root.join(path).is_file()
    }

    fn meta(&mut self, path: &str) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.open(path)?
            .take(MAX_META + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| read_err(e, path))?;
        if bytes.len() as u64 > MAX_META {
            return Err(Error::TooLarge {
                what: path.to_string(),
                max: MAX_META,
            });
        }
        Ok(bytes)
    }

    fn layer(&mut self, path: &str) -> Result<LayerBlob> {
        if let Some(done) = self.staged.get(path) {
            return usable(done.clone(), path);
        }
        let mut file = self.open(path)?;
        let mut head = [0u8; 512];
        let len = stage::read_head(&mut file, &mut head).map_err(|e| read_err(e, path))?;
        let src = (&head[..len]).chain(file);
        let named = paths::digest_of_blob_path(path);
        let kind = stage::sniff(&head[..len]);
        let staged = stage::stage_layer(self.store, kind, src, named.as_ref(), path)?;
        self.staged.insert(path.to_string(), staged.clone());
        usable(staged, path)
    }
}
