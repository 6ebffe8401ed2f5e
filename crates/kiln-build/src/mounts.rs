//! Source views (the build context, or another stage's or image's root filesystem) and the
//! `RUN --mount` types built on them: bind, cache and tmpfs.

use std::fs::File;
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};

use kiln_dockerfile::instructions::{Mount, MountType, Sharing, Source};
use kiln_executor::MountSpec;
use kiln_fileop::{CopyRequest, Source as FileopSource};
use kiln_snapshot::ActiveSnapshot;
use rustix::fs::FlockOperation;
use tempfile::TempDir;

use crate::engine::Shared;
use crate::error::{BuildError, Result, io_err};
use crate::layers::{BaseImage, stackable};
use crate::metadata::clean_path;

/// A readable root filesystem: the context directory, or a mounted snapshot of layers.
pub(crate) struct SourceView {
    /// Dropped (unmounted) before its directory is removed: fields drop in order.
    snapshot: Option<Box<dyn ActiveSnapshot>>,
    _tmp: Option<TempDir>,
    root: PathBuf,
}

impl SourceView {
    /// The context (`source` is `None`), or a stage's or image's files.
    pub fn open(shared: &Shared<'_>, source: Option<&Source>) -> Result<Self> {
        let lowers = match source {
            None => {
                return Ok(Self {
                    snapshot: None,
                    _tmp: None,
                    root: shared.context.root().to_path_buf(),
                });
            }
            Some(Source::Stage(i)) => shared.stage_output(*i)?.lowers.clone(),
            Some(Source::Image(name)) => {
                let image = BaseImage::load(shared.store, name)?;
                shared.layers.lowers(&image.layers)?
            }
        };
        Self::layered(shared, &lowers)
    }

    /// A writable view over `lowers`; its changes are discarded on drop.
    fn layered(shared: &Shared<'_>, lowers: &[PathBuf]) -> Result<Self> {
        let tmp = shared.store.tmp_dir()?;
        let snapshot = shared
            .snapshotter
            .prepare(&stackable(lowers), &tmp.path().join("snapshot"))?;
        let root = snapshot.rootfs().to_path_buf();
        Ok(Self {
            snapshot: Some(snapshot),
            _tmp: Some(tmp),
            root,
        })
    }

    pub fn root(&self) -> &Path {
        self.snapshot.as_ref().map_or(&self.root, |s| s.rootfs())
    }

    /// Whether this is the build context (whose `.dockerignore` applies).
    pub fn is_context(&self) -> bool {
        self.snapshot.is_none()
    }
}

/// The mounts of one RUN, with what must stay alive while it runs.
#[derive(Default)]
pub(crate) struct Prepared {
    pub specs: Vec<MountSpec>,
    /// Secrets exposed as `KEY=value` to this RUN only (never in its cache key).
    pub env: Vec<String>,
    /// Snapshots behind bind mounts.
    _views: Vec<SourceView>,
    /// Temp dirs behind mounts: secret files, and filtered context copies (dropped after
    /// the views over them).
    _dirs: Vec<TempDir>,
    /// Locks of `sharing=locked` and `sharing=private` cache mounts, held until the run ends.
    _locks: Vec<CacheLock>,
}

/// Prepares `mounts`; relative targets are taken from `cwd`.
pub(crate) fn prepare(shared: &Shared<'_>, mounts: &[Mount], cwd: &str) -> Result<Prepared> {
    let mut out = Prepared::default();
    for m in mounts {
        match m.kind {
            MountType::Bind => bind(shared, m, target(m, cwd)?, &mut out)?,
            MountType::Cache => cache(shared, m, target(m, cwd)?, &mut out)?,
            MountType::Tmpfs => out.specs.push(MountSpec::Tmpfs {
                target: target(m, cwd)?,
            }),
            MountType::Secret => {
                let secret = crate::secret::prepare(shared, m)?;
                out.specs.extend(secret.spec);
                out.env.extend(secret.env);
                out._dirs.extend(secret.dir);
            }
            // `platform::check` refuses these with their Dockerfile location before anything
            // runs; this covers ONBUILD triggers.
            MountType::Ssh => return Err(BuildError::Unsupported("RUN --mount=type=ssh".into())),
        }
    }
    Ok(out)
}

fn target(m: &Mount, cwd: &str) -> Result<String> {
    let t = m.target.as_deref().unwrap_or_default();
    if t.is_empty() {
        return Err(BuildError::Invalid("mount target is required".into()));
    }
    Ok(if t.starts_with('/') {
        clean_path(t)
    } else {
        clean_path(&format!("{cwd}/{t}"))
    })
}

/// Bind: the context or a stage's files; writes (`rw`) land in a throw-away overlay.
fn bind(shared: &Shared<'_>, m: &Mount, target: String, out: &mut Prepared) -> Result<()> {
    let view = SourceView::open(shared, m.source_ref.as_ref())?;
    let source = m.source.as_deref().unwrap_or("/");
    let host = if view.is_context() {
        context_source(shared, source, out)?
    } else {
        kiln_executor::resolve_in_root(view.root(), source)?
    };
    if !host.exists() {
        return Err(not_found(source));
    }
    let source = if !m.read_only && host.is_dir() {
        let rw = SourceView::layered(shared, std::slice::from_ref(&host))?;
        let root = rw.root().to_path_buf();
        out._views.push(rw);
        root
    } else {
        host
    };
    out._views.push(view);
    out.specs.push(MountSpec::Bind {
        source,
        target,
        readonly: m.read_only,
    });
    Ok(())
}

/// The context's `source` as BuildKit receives it: resolved inside the context with
/// `.dockerignore` applied (an ignored source is not found), and a directory under ignore rules
/// copied without its ignored entries into a temp dir that `out` keeps.
fn context_source(shared: &Shared<'_>, source: &str, out: &mut Prepared) -> Result<PathBuf> {
    let ctx = &shared.context;
    let selected = match ctx.select(source) {
        Ok(s) => s,
        Err(kiln_context::Error::NotFound { .. }) => return Err(not_found(source)),
        Err(e) => return Err(kiln_fileop::Error::from(e).into()),
    };
    let Some(sel) = selected.first() else {
        return Err(not_found(source));
    };
    let host = ctx.root().join(&sel.resolved);
    if !sel.is_dir() || ctx.matcher().is_empty() {
        return Ok(host);
    }
    let tmp = shared.store.tmp_dir()?;
    let copy = tmp.path().join("context");
    std::fs::create_dir(&copy).map_err(io_err("creating", &copy))?;
    let req = CopyRequest::new(FileopSource::Context(ctx), &[source], &copy, "/");
    kiln_fileop::copy(&req)?;
    out._dirs.push(tmp);
    Ok(copy)
}

fn not_found(source: &str) -> BuildError {
    BuildError::Invalid(format!(
        "failed to compute cache key: \"{source}\" not found"
    ))
}

/// Cache: a directory under the store root kept across builds, by `id` (default: the target).
/// `sharing=locked` waits for the directory's other users; `sharing=private` takes the first
/// instance of the cache no other private user holds, making a new one when all are held.
fn cache(shared: &Shared<'_>, m: &Mount, target: String, out: &mut Prepared) -> Result<()> {
    if m.from.is_some() {
        return Err(BuildError::Unsupported("cache mounts with from=".into()));
    }
    let dir = cache_dir(shared.store, &cache_id(m, &target));
    let base = cache_mounts_dir(shared.store);
    std::fs::create_dir_all(&base).map_err(io_err("creating", &base))?;
    let dir = match m.sharing {
        Some(Sharing::Locked) => {
            out._locks.push(CacheLock::wait(&dir)?);
            dir
        }
        Some(Sharing::Private) => {
            let (dir, lock) = private_instance(&dir)?;
            out._locks.push(lock);
            dir
        }
        _ => dir,
    };
    if !dir.is_dir() {
        std::fs::create_dir_all(&dir).map_err(io_err("creating cache mount", &dir))?;
        let mode = m.mode.unwrap_or(0o755);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode))
            .map_err(io_err("setting mode of", &dir))?;
        chown(&dir, Some(m.uid.unwrap_or(0)), Some(m.gid.unwrap_or(0)))
            .map_err(io_err("changing owner of", &dir))?;
    }
    out.specs.push(MountSpec::Bind {
        source: dir,
        target,
        readonly: m.read_only,
    });
    Ok(())
}

/// A cache mount's id: its `id=`, else its (resolved) target.
fn cache_id(m: &Mount, target: &str) -> String {
    m.id.clone()
        .filter(|i| !i.is_empty())
        .unwrap_or_else(|| target.to_string())
}

/// The ids of the cache mounts among `mounts`; relative targets are taken from `cwd`.
pub(crate) fn cache_ids(mounts: &[Mount], cwd: &str) -> Vec<String> {
    mounts
        .iter()
        .filter(|m| m.kind == MountType::Cache && m.from.is_none())
        .filter_map(|m| target(m, cwd).ok().map(|t| cache_id(m, &t)))
        .collect()
}

/// Where the store keeps the cache mount `id`.
pub(crate) fn cache_dir(store: &kiln_store::Store, id: &str) -> PathBuf {
    cache_mounts_dir(store).join(encode_id(id))
}

/// Where the store keeps cache mounts.
fn cache_mounts_dir(store: &kiln_store::Store) -> PathBuf {
    store.root().join("cache-mounts")
}

/// The first instance of the cache at `first` (`first` itself, then `first.1`, `first.2`,
/// ...) whose lock is free, locked.
fn private_instance(first: &Path) -> Result<(PathBuf, CacheLock)> {
    let mut n = 0u64;
    loop {
        let dir = match n {
            0 => first.to_path_buf(),
            n => {
                let mut name = first.as_os_str().to_owned();
                name.push(format!(".{n}"));
                PathBuf::from(name)
            }
        };
        if let Some(lock) = CacheLock::try_take(&dir)? {
            return Ok((dir, lock));
        }
        n += 1;
    }
}

/// An exclusive `flock` on a cache directory's lock file (beside it), released on drop. Every
/// open is its own lock, so it excludes other threads of this process and other processes
/// alike.
struct CacheLock {
    _file: File,
}

impl CacheLock {
    /// Waits until `dir` is free.
    fn wait(dir: &Path) -> Result<Self> {
        let (file, path) = Self::open(dir)?;
        rustix::fs::flock(&file, FlockOperation::LockExclusive)
            .map_err(|e| io_err("locking", &path)(e.into()))?;
        Ok(Self { _file: file })
    }

    /// Locks `dir` if it is free.
    fn try_take(dir: &Path) -> Result<Option<Self>> {
        let (file, path) = Self::open(dir)?;
        match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(Self { _file: file })),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(e) => Err(io_err("locking", &path)(e.into())),
        }
    }

    fn open(dir: &Path) -> Result<(File, PathBuf)> {
        let mut path = dir.as_os_str().to_owned();
        path.push(".lock");
        let path = PathBuf::from(path);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err("opening", &path))?;
        Ok((file, path))
    }
}

/// A cache id as one safe directory name: hex of its bytes, so distinct ids never collide.
fn encode_id(id: &str) -> String {
    id.bytes().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_ids_become_distinct_names() {
        assert_eq!(encode_id("a/b"), "612f62");
        assert_ne!(encode_id("a_b"), encode_id("a/b"));
    }
}
