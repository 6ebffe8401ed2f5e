//! Destination paths: joined to the WORKDIR, cleaned lexically like Go's
//! `path.Join`, then resolved inside the root so symlinks in the image never
//! lead out of it; directories are created only below that resolved path.

use std::fs;
use std::io;
use std::os::unix::fs::{PermissionsExt, lchown};
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::owner::Owner;

/// A cleaned absolute destination and whether it names a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dest {
    /// Cleaned components below `/`.
    pub parts: Vec<String>,
    /// Written with a trailing `/` (or as `.`): copy INTO it.
    pub is_dir: bool,
}

impl Dest {
    /// `dest` as BuildKit's Dockerfile frontend reads it relative to `workdir`.
    pub fn new(workdir: &str, dest: &str) -> Self {
        let is_dir = dest.is_empty() || dest == "." || dest.ends_with('/');
        let joined = if dest.starts_with('/') {
            dest.to_owned()
        } else {
            format!("{workdir}/{dest}")
        };
        Self {
            parts: clean_parts(&joined),
            is_dir,
        }
    }

    /// The path as an absolute string.
    pub fn path(&self) -> String {
        format!("/{}", self.parts.join("/"))
    }

    /// The parent's absolute path (`/` for `/` itself).
    pub fn parent(&self) -> String {
        let n = self.parts.len().saturating_sub(1);
        format!("/{}", self.parts[..n].join("/"))
    }
}

/// Lexical cleaning of an absolute path; `..` stops at `/`.
pub(crate) fn clean_parts(path: &str) -> Vec<String> {
    // Rooted so `..` can never climb above the root, as inside a container.
    kiln_context::clean(&format!("/{path}"))
        .split('/')
        .filter(|part| !part.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Creates the WORKDIR `path` inside `root` as BuildKit does: missing
/// directories (parents included) get mode 0755 and `owner` (the current
/// USER); existing ones are left alone. Returns the host path.
pub fn mkdir_p(root: &Path, path: &str, owner: Owner) -> Result<PathBuf> {
    mkdir_all(root, path, owner)
}

/// In-root `mkdir -p`: resolves `path` inside `root`, then creates each
/// missing component (0755, chowned to `owner`) without following links.
pub(crate) fn mkdir_all(root: &Path, path: &str, owner: Owner) -> Result<PathBuf> {
    let host = kiln_executor::resolve_in_root(root, path)?;
    let rel = host.strip_prefix(root).unwrap_or(Path::new(""));
    let mut cur = root.to_path_buf();
    for comp in rel.components() {
        cur.push(comp);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(Error::MkdirNotDirectory(cur)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => create_dir(&cur, owner)?,
            Err(e) => return Err(e).at("stat", cur),
        }
    }
    Ok(host)
}

/// Creates the missing parents of `target`, a host path already resolved
/// inside `root` (a dangling link's target may name missing directories).
pub(crate) fn mkdir_parent_of(root: &Path, target: &Path, owner: Owner) -> Result<()> {
    let rel = target.strip_prefix(root).unwrap_or(Path::new(""));
    let parent = rel.parent().unwrap_or(Path::new(""));
    mkdir_all(root, &parent.to_string_lossy(), owner).map(|_| ())
}

/// One new directory with mode 0755 (umask ignored) and `owner`.
pub(crate) fn create_dir(path: &Path, owner: Owner) -> Result<()> {
    fs::create_dir(path).at("mkdir", path)?;
    lchown(path, Some(owner.uid), Some(owner.gid)).at("chown", path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).at("chmod", path)
}

#[cfg(test)]
mod tests {
    use super::Dest;

    #[test]
    fn dest_is_joined_to_the_workdir_and_cleaned() {
        let d = Dest::new("/wd", ".");
        assert_eq!((d.path(), d.is_dir), ("/wd".to_owned(), true));
        let d = Dest::new("/wd", "rel/");
        assert_eq!((d.path(), d.is_dir), ("/wd/rel".to_owned(), true));
        let d = Dest::new("/wd", "/a/../../b/./c");
        assert_eq!(
            (d.path(), d.parent(), d.is_dir),
            ("/b/c".into(), "/b".into(), false)
        );
        assert_eq!(Dest::new("/", "/").parent(), "/");
    }
}
