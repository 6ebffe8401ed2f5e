//! Depth-first walk of a context subtree in byte order of names (children
//! right after their directory), skipping what `.dockerignore` excludes and
//! never following symlinks: links inside copied trees are copied as links.

use std::fs::{self, File, Metadata, OpenOptions};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::error::{Error, Result, io_err};
use crate::ignore::{IgnoreMatcher, MatchState};

/// The type of a context entry (as `lstat` sees it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (never followed inside a copied tree).
    Symlink,
    /// A FIFO, socket or device node.
    Other,
}

impl FileKind {
    pub(crate) fn of(meta: &Metadata) -> Self {
        let ft = meta.file_type();
        if ft.is_symlink() {
            Self::Symlink
        } else if ft.is_dir() {
            Self::Dir
        } else if ft.is_file() {
            Self::File
        } else {
            Self::Other
        }
    }

    pub(crate) fn tag(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Dir => "dir",
            Self::Symlink => "symlink",
            Self::Other => "other",
        }
    }
}

/// One entry of a walked subtree.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Path relative to the walked root (`""` for the root itself).
    pub rel: String,
    /// Path relative to the context root.
    pub context_path: String,
    /// Entry type.
    pub kind: FileKind,
    /// `lstat` metadata.
    pub metadata: Metadata,
}

/// A directory on the current path, with whether it was reported yet:
/// excluded directories walked for `!` exceptions are reported only once
/// something under them is included.
struct Ancestor {
    entry: Entry,
    state: MatchState,
    reported: bool,
}

/// Work item: a context path and the number of ancestors it has in the walk.
struct Pending {
    context_path: String,
    depth: usize,
}

/// Walks the directory at `start` (context-relative, symlink-free) and calls
/// `visit` for it and every included descendant.
pub(crate) fn walk_dir(
    root: &Path,
    matcher: &IgnoreMatcher,
    start: &str,
    visit: &mut dyn FnMut(&Entry) -> Result<()>,
) -> Result<()> {
    let metadata = stat(root, start)?;
    let top = Entry {
        rel: String::new(),
        context_path: start.to_owned(),
        kind: FileKind::of(&metadata),
        metadata,
    };
    visit(&top)?;
    let mut chain = vec![Ancestor {
        entry: top,
        state: state_of(matcher, start),
        reported: true,
    }];
    let mut stack = Vec::new();
    push_children(root, start, 1, &mut stack)?;
    while let Some(item) = stack.pop() {
        chain.truncate(item.depth);
        step(root, matcher, item, &mut chain, &mut stack, visit)?;
    }
    Ok(())
}

fn step(
    root: &Path,
    matcher: &IgnoreMatcher,
    item: Pending,
    chain: &mut Vec<Ancestor>,
    stack: &mut Vec<Pending>,
    visit: &mut dyn FnMut(&Entry) -> Result<()>,
) -> Result<()> {
    let Some(parent) = chain.last() else {
        return Ok(());
    };
    let (excluded, state) = matcher.match_child(&item.context_path, &parent.state);
    let metadata = stat(root, &item.context_path)?;
    let kind = FileKind::of(&metadata);
    let descend =
        kind == FileKind::Dir && (!excluded || matcher.may_contain_included(&item.context_path));
    if excluded && !descend {
        return Ok(());
    }
    let base = &chain[0].entry.context_path;
    let rel = relative_to(base, &item.context_path);
    let entry = Entry {
        rel,
        context_path: item.context_path,
        kind,
        metadata,
    };
    if !excluded {
        report_ancestors(chain, visit)?;
        visit(&entry)?;
    }
    if descend {
        push_children(root, &entry.context_path, item.depth + 1, stack)?;
        chain.push(Ancestor {
            entry,
            state,
            reported: !excluded,
        });
    }
    Ok(())
}

fn report_ancestors(
    chain: &mut [Ancestor],
    visit: &mut dyn FnMut(&Entry) -> Result<()>,
) -> Result<()> {
    for ancestor in chain.iter_mut().filter(|a| !a.reported) {
        visit(&ancestor.entry)?;
        ancestor.reported = true;
    }
    Ok(())
}

/// Pushes a directory's children in reverse name order so they pop sorted.
fn push_children(root: &Path, dir: &str, depth: usize, stack: &mut Vec<Pending>) -> Result<()> {
    let mut names = list_dir(root, dir)?;
    names.sort_unstable_by(|a, b| b.as_bytes().cmp(a.as_bytes()));
    stack.extend(names.into_iter().map(|name| Pending {
        context_path: join(dir, &name),
        depth,
    }));
    Ok(())
}

/// Names in a context directory, as UTF-8.
pub(crate) fn list_dir(root: &Path, dir: &str) -> Result<Vec<String>> {
    let path = root.join(dir);
    let mut names = Vec::new();
    for entry in fs::read_dir(&path).map_err(io_err("reading directory", &path))? {
        let entry = entry.map_err(io_err("reading directory", &path))?;
        let name = entry.file_name().into_vec();
        let name =
            String::from_utf8(name).map_err(|_| Error::NonUtf8Path { path: entry.path() })?;
        names.push(name);
    }
    Ok(names)
}

/// The matcher state a walk starting at `dir` inherits from its ancestors.
fn state_of(matcher: &IgnoreMatcher, dir: &str) -> MatchState {
    let mut state = MatchState::default();
    let mut prefix = String::new();
    for part in dir.split('/').filter(|p| !p.is_empty()) {
        prefix = join(&prefix, part);
        state = matcher.match_child(&prefix, &state).1;
    }
    state
}

/// Opens a context file for reading; a symlink swapped in is refused.
pub(crate) fn open_no_follow(root: &Path, rel: &str) -> Result<File> {
    let path = root.join(rel);
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(io_err("opening", &path))
}

pub(crate) fn stat(root: &Path, rel: &str) -> Result<Metadata> {
    let path = root.join(rel);
    fs::symlink_metadata(&path).map_err(io_err("stat", &path))
}

/// Joins context-relative paths, where `""` is the root.
pub(crate) fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

fn relative_to(base: &str, path: &str) -> String {
    if base.is_empty() {
        return path.to_owned();
    }
    path.strip_prefix(base)
        .and_then(|p| p.strip_prefix('/'))
        .unwrap_or(path)
        .to_owned()
}
