//! Resolving paths inside a rootfs the way the container will see them: symlinks (absolute or
//! relative) are followed but never escape the root, so `/etc/passwd -> /host/...` or `../../..`
//! stays inside it.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, IoContext, Result};

/// Linux's own limit on symlinks followed in one lookup.
const MAX_SYMLINKS: u32 = 40;

/// The host path of `path` as seen from inside `root`. Missing components are kept as they are,
/// so the result may not exist.
pub fn resolve_in_root(root: &Path, path: &str) -> Result<PathBuf> {
    let mut resolved: Vec<OsString> = Vec::new();
    let mut pending: VecDeque<OsString> = normal_parts(Path::new(path));
    let mut links = 0;
    while let Some(part) = pending.pop_front() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let candidate = join(root, &resolved).join(&part);
        match std::fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(Error::SymlinkLoop(path.to_string()));
                }
                let target = std::fs::read_link(&candidate).at("reading link", &candidate)?;
                if target.is_absolute() {
                    resolved.clear();
                }
                for (i, t) in normal_parts(&target).into_iter().enumerate() {
                    pending.insert(i, t);
                }
            }
            _ => resolved.push(part),
        }
    }
    Ok(join(root, &resolved))
}

/// The components of `path` as names and `..`, dropping the root and `.`.
fn normal_parts(path: &Path) -> VecDeque<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}

fn join(root: &Path, parts: &[OsString]) -> PathBuf {
    let mut p = root.to_path_buf();
    p.extend(parts);
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn absolute_and_dotdot_symlinks_stay_inside_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir_all(root.join("real/etc")).unwrap();
        symlink("/real/etc", root.join("etc")).unwrap();
        symlink("../../../../../passwd", root.join("real/etc/passwd")).unwrap();
        assert_eq!(
            resolve_in_root(root, "/etc/group").unwrap(),
            root.join("real/etc/group")
        );
        assert_eq!(
            resolve_in_root(root, "/etc/passwd").unwrap(),
            root.join("passwd")
        );
        assert_eq!(resolve_in_root(root, "../../x").unwrap(), root.join("x"));
    }

    #[test]
    fn symlink_loops_are_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        symlink("b", tmp.path().join("a")).unwrap();
        symlink("a", tmp.path().join("b")).unwrap();
        assert!(matches!(
            resolve_in_root(tmp.path(), "/a/x"),
            Err(Error::SymlinkLoop(_))
        ));
    }
}
