//! COPY/ADD source selection with BuildKit's rules: the path is cleaned
//! against `/` (so `..` cannot escape), the literal prefix is resolved with
//! symlinks followed inside the context, remaining components are matched
//! with `filepath.Match` per component, and each match is followed. A
//! missing literal source is an error; see [`select`] for empty wildcards.

use std::path::Path;

use crate::clean::clean;
use crate::error::{Error, Result};
use crate::glob::{Glob, has_meta};
use crate::resolve::{Visible, resolve_in_root};
use crate::walk::{FileKind, join, list_dir, stat};

/// One source chosen by a COPY/ADD pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    /// The path as matched, relative to the context root (`""` is the root).
    /// Its last component names what a COPY creates at the destination.
    pub rel_path: String,
    /// Where the data really is after following symlinks (context-relative,
    /// free of symlinks).
    pub resolved: String,
    /// Type of the resolved object; never [`FileKind::Symlink`], as source
    /// links are followed (a loop is [`Error::SymlinkLoop`]).
    pub kind: FileKind,
}

impl Selected {
    /// Whether the source is a directory, whose contents (not itself) COPY copies.
    pub fn is_dir(&self) -> bool {
        self.kind == FileKind::Dir
    }
}

/// Selects sources for `pattern` under `root`; see the module docs. A
/// wildcard that matches nothing yields an empty list when its literal
/// prefix is the context root (`COPY requirements.* .` succeeds in BuildKit)
/// and [`Error::NotFound`] otherwise.
pub(crate) fn select(root: &Path, visible: &Visible<'_>, pattern: &str) -> Result<Vec<Selected>> {
    let cleaned = clean(&format!("/{pattern}"));
    let shown = cleaned.trim_start_matches('/').to_owned();
    let parts: Vec<&str> = shown.split('/').filter(|p| !p.is_empty()).collect();
    let not_found = || Error::NotFound {
        path: shown.clone(),
    };
    let Some(first_glob) = parts.iter().position(|p| has_meta(p)) else {
        let one = follow(root, visible, &shown, &shown)?.ok_or_else(not_found)?;
        return Ok(vec![one]);
    };
    let globs = parts[first_glob..]
        .iter()
        .map(|p| Glob::parse(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| Error::BadSourcePattern {
            pattern: pattern.to_owned(),
        })?;
    let prefix = parts[..first_glob].join("/");
    let base = resolve_in_root(root, &prefix, true, visible)?.ok_or_else(not_found)?;
    if !stat(root, &base)?.is_dir() {
        return Err(not_found());
    }
    let mut out = Vec::new();
    expand(root, visible, (&base, &prefix), &globs, &mut out)?;
    // BuildKit allows empty wildcards, but it only receives directories that
    // hold a file some COPY asked for: an empty match below the root finds
    // no directory there and fails; at the root it copies nothing.
    if out.is_empty() && !prefix.is_empty() {
        return Err(not_found());
    }
    Ok(out)
}

/// Matches `globs` below the real directory `dir` (shown to users as `shown`).
fn expand(
    root: &Path,
    visible: &Visible<'_>,
    (dir, shown): (&str, &str),
    globs: &[Glob],
    out: &mut Vec<Selected>,
) -> Result<()> {
    let Some((glob, rest)) = globs.split_first() else {
        return Ok(());
    };
    let mut names = list_dir(root, dir)?;
    names.sort_unstable();
    for name in names.iter().filter(|n| glob.matches(n)) {
        let real = join(dir, name);
        let shown_path = join(shown, name);
        let is_dir = stat(root, &real)?.is_dir();
        if !visible(&real, is_dir) {
            continue;
        }
        if rest.is_empty() {
            out.extend(follow(root, visible, &real, &shown_path)?);
        } else if is_dir {
            expand(root, visible, (&real, &shown_path), rest, out)?;
        }
    }
    Ok(())
}

/// Follows `real` to what it designates; `None` if missing or dangling.
fn follow(root: &Path, visible: &Visible<'_>, real: &str, shown: &str) -> Result<Option<Selected>> {
    let Some(resolved) = resolve_in_root(root, real, true, visible)? else {
        return Ok(None);
    };
    let kind = FileKind::of(&stat(root, &resolved)?);
    Ok(Some(Selected {
        rel_path: shown.to_owned(),
        resolved,
        kind,
    }))
}
