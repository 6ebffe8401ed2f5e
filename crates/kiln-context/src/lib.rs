//! The build context: what `docker build` sends to BuildKit, and how COPY/ADD
//! pick sources from it.
//!
//! * [`IgnoreMatcher`] applies `.dockerignore` with moby's exact semantics.
//! * [`Context`] is a directory, or a tar stream unpacked safely into a
//!   private temporary directory. Nothing outside its root is ever read:
//!   symlinks are resolved with the root acting as `/`, like a chroot.
//! * [`Context::select`] expands a COPY source the way BuildKit does.
//! * [`Context::checksum`] digests selected sources for cache keys.

mod clean;
mod error;
mod glob;
mod hash;
mod ignore;
mod resolve;
mod select;
mod tar;
mod walk;

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub use clean::clean;
pub use error::{Error, Result};
pub use hash::{CacheStats, HashCache};
pub use ignore::IgnoreMatcher;
pub use select::Selected;
pub use walk::{Entry, FileKind};

use error::io_err;

/// A build context rooted at a real directory.
#[derive(Debug)]
pub struct Context {
    root: PathBuf,
    matcher: IgnoreMatcher,
    /// Keeps an unpacked tar context alive; removed on drop.
    _unpacked: Option<tempfile::TempDir>,
}

impl Context {
    /// A context directory on disk, filtered by `matcher`.
    pub fn dir(path: impl AsRef<Path>, matcher: IgnoreMatcher) -> Result<Self> {
        let path = path.as_ref();
        let root = path.canonicalize().map_err(io_err("resolving", path))?;
        if !root.is_dir() {
            return Err(Error::NotADirectory { path: root });
        }
        Ok(Self {
            root,
            matcher,
            _unpacked: None,
        })
    }

    /// A context read from a (plain, gzip, bzip2, xz or zstd) tar stream, as in
    /// `docker build - < ctx.tar`, unpacked into a fresh private directory.
    /// `dockerfile` is the Dockerfile's path inside the archive; its
    /// `.dockerignore` rules are loaded from the archive.
    pub fn from_tar(reader: impl Read, dockerfile: &str) -> Result<Self> {
        let tmp = tempfile::Builder::new()
            .prefix("kiln-context-")
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir()
            .map_err(io_err("creating", &std::env::temp_dir()))?;
        // The private temp dir keeps the data private; the root inside it gets
        // an ordinary directory mode, since its metadata enters checksums.
        let unpacked = tmp.path().join("context");
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(&unpacked)
            .map_err(io_err("creating", &unpacked))?;
        tar::unpack(reader, &unpacked)?;
        let root = unpacked
            .canonicalize()
            .map_err(io_err("resolving", &unpacked))?;
        let inside = clean::clean(&format!("/{dockerfile}"));
        let dockerfile = root.join(inside.trim_start_matches('/'));
        let matcher = IgnoreMatcher::from_context(&root, &dockerfile)?;
        Ok(Self {
            root,
            matcher,
            _unpacked: Some(tmp),
        })
    }

    /// The real, canonical root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The `.dockerignore` rules in force.
    pub fn matcher(&self) -> &IgnoreMatcher {
        &self.matcher
    }

    /// Expands one COPY/ADD source. A literal source that does not exist, or a
    /// wildcard below a subdirectory that matches nothing, fails with
    /// [`Error::NotFound`] worded like BuildKit; a wildcard directly under the
    /// root that matches nothing yields an empty list, as BuildKit's
    /// `AllowEmptyWildcard` copies nothing then.
    pub fn select(&self, pattern: &str) -> Result<Vec<Selected>> {
        select::select(&self.root, &|p, is_dir| self.visible(p, is_dir), pattern)
    }

    /// Visits `selected` and, for a directory, every included entry beneath
    /// it in a stable order. Symlinks below a selected directory are reported
    /// as links, never followed.
    pub fn walk(
        &self,
        selected: &Selected,
        visit: &mut dyn FnMut(&Entry) -> Result<()>,
    ) -> Result<()> {
        if selected.is_dir() {
            return walk::walk_dir(&self.root, &self.matcher, &selected.resolved, visit);
        }
        let metadata = walk::stat(&self.root, &selected.resolved)?;
        visit(&Entry {
            rel: String::new(),
            context_path: selected.resolved.clone(),
            kind: FileKind::of(&metadata),
            metadata,
        })
    }

    /// Opens a walked regular file for reading, refusing a final symlink.
    pub fn open(&self, entry: &Entry) -> Result<File> {
        walk::open_no_follow(&self.root, &entry.context_path)
    }

    /// The target of a walked symlink, verbatim (it is never resolved here).
    pub fn read_link(&self, entry: &Entry) -> Result<String> {
        resolve::read_link_str(&self.root, &entry.context_path)
    }

    /// Digest (`sha256:<hex>`) of the selected sources: names, types, modes,
    /// owners, link targets and contents, but not timestamps. Unchanged files
    /// are served from `cache`; call [`HashCache::save`] to persist it.
    pub fn checksum(&self, selected: &[Selected], cache: &mut HashCache) -> Result<String> {
        let mut summer = hash::Summer::new(&self.root, cache);
        for sel in selected {
            summer.source(&sel.rel_path, sel.kind)?;
            self.walk(sel, &mut |entry| summer.add(entry))?;
        }
        summer.finish()
    }

    /// Whether a context path exists in the context as BuildKit receives it.
    fn visible(&self, rel: &str, is_dir: bool) -> bool {
        !self.matcher.is_excluded(rel) || (is_dir && self.matcher.may_contain_included(rel))
    }
}
