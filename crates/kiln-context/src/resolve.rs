//! Symlink resolution confined to a root directory, like a chroot: `..`
//! stops at the root and absolute link targets restart from it. This is how
//! BuildKit resolves COPY sources, and it is what keeps host files unread.

use std::collections::VecDeque;
use std::fs;
use std::io;
use std::path::Path;

use crate::error::{Error, Result, io_err};

/// Linux's limit on symlink hops in one resolution.
const MAX_LINK_HOPS: usize = 40;

/// Predicate telling whether a context path (relative, slash-separated) is
/// part of the context; `bool` says whether it is a directory.
pub(crate) type Visible<'a> = dyn Fn(&str, bool) -> bool + 'a;

/// Resolves `rel` under `root` without ever leaving it. Returns the resolved
/// relative path (`""` for the root), or `None` when a component is missing,
/// not a directory, or not visible. The final component is followed only when
/// `follow_final` is set.
pub(crate) fn resolve_in_root(
    root: &Path,
    rel: &str,
    follow_final: bool,
    visible: &Visible<'_>,
) -> Result<Option<String>> {
    let mut pending: VecDeque<String> = split(rel).collect();
    let mut resolved: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(part) = pending.pop_front() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        resolved.push(part);
        let joined = resolved.join("/");
        let Some(meta) = lstat(&root.join(&joined))? else {
            return Ok(None);
        };
        if !visible(&joined, meta.is_dir()) {
            return Ok(None);
        }
        let is_last = pending.iter().all(|p| p == ".");
        if meta.file_type().is_symlink() && (!is_last || follow_final) {
            hops += 1;
            if hops > MAX_LINK_HOPS {
                return Err(Error::SymlinkLoop {
                    path: rel.to_owned(),
                });
            }
            let target = read_link_str(root, &joined)?;
            resolved.pop();
            if target.starts_with('/') {
                resolved.clear();
            }
            for p in split(&target).rev() {
                pending.push_front(p);
            }
        } else if !is_last && !meta.is_dir() {
            return Ok(None);
        }
    }
    Ok(Some(resolved.join("/")))
}

/// Non-empty, non-`.` components of a slash path.
fn split(path: &str) -> impl DoubleEndedIterator<Item = String> + '_ {
    path.split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .map(str::to_owned)
}

/// `lstat`, with "does not exist" and "not a directory" mapped to `None`.
pub(crate) fn lstat(path: &Path) -> Result<Option<fs::Metadata>> {
    match fs::symlink_metadata(path) {
        Ok(meta) => Ok(Some(meta)),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(io_err("stat", path)(e)),
    }
}

/// Reads a link target as UTF-8 text.
pub(crate) fn read_link_str(root: &Path, rel: &str) -> Result<String> {
    let path = root.join(rel);
    let target = fs::read_link(&path).map_err(io_err("readlink", &path))?;
    target
        .into_os_string()
        .into_string()
        .map_err(|_| Error::NonUtf8Path { path })
}
