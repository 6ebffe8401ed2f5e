//! The copy snapshotter, for filesystems where overlayfs cannot mount (nested overlays,
//! unprivileged runs on some kernels). The lowers are flattened into a private rootfs; after the
//! step the rootfs is compared with the lowers and the changes are written to the upper dir in
//! overlay form: deletions become 0/0 character devices and replaced directories become opaque.
//!
//! Each directory copied from the lowers carries a private `trusted.kiln.lower` xattr, so a
//! directory deleted and created again (which overlayfs would mark opaque) is told apart from one
//! edited in place even if the filesystem reuses its inode number. Hard links are copied as
//! separate files.

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::fs::{self, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result};
use crate::fsutil::{
    LOWER_MARKER_XATTR, copy_leaf, copy_metadata, get_xattr, is_opaque, is_whiteout, make_whiteout,
    remove_any, same_metadata, set_opaque, set_times, set_xattr,
};
use crate::lower::LowerView;
use crate::{ActiveSnapshot, PlainSnapshot, Snapshotter};

/// Copies the lowers into a plain directory and diffs it afterwards.
#[derive(Debug, Clone, Copy, Default)]
pub struct CopySnapshotter;

impl Snapshotter for CopySnapshotter {
    fn prepare(&self, lowers: &[PathBuf], work_dir: &Path) -> Result<Box<dyn ActiveSnapshot>> {
        if lowers.is_empty() {
            return Ok(Box::new(PlainSnapshot::create(work_dir)?));
        }
        let (rootfs, upper) = (work_dir.join("rootfs"), work_dir.join("upper"));
        for dir in [&rootfs, &upper] {
            fs::create_dir_all(dir).at("creating", dir)?;
        }
        mark_lower(&rootfs)?;
        for layer in lowers {
            apply_layer(layer, &rootfs)?;
        }
        Ok(Box::new(CopySnapshot {
            lowers: lowers.to_vec(),
            rootfs,
            upper,
        }))
    }

    fn name(&self) -> &'static str {
        "copy"
    }
}

struct CopySnapshot {
    lowers: Vec<PathBuf>,
    rootfs: PathBuf,
    upper: PathBuf,
}

impl ActiveSnapshot for CopySnapshot {
    fn rootfs(&self) -> &Path {
        &self.rootfs
    }

    fn upper(&self) -> &Path {
        &self.upper
    }

    fn finish(self: Box<Self>) -> Result<PathBuf> {
        let mut differ = Differ {
            view: LowerView::new(&self.lowers),
            rootfs: &self.rootfs,
            upper: &self.upper,
            created: Vec::new(),
        };
        differ.diff_dir(Path::new(""))?;
        differ.restore_dir_times()?;
        fs::remove_dir_all(&self.rootfs).at("removing", &self.rootfs)?;
        Ok(self.upper)
    }
}

fn mark_lower(dir: &Path) -> Result<()> {
    set_xattr(dir, OsStr::new(LOWER_MARKER_XATTR), b"1").at("marking", dir)
}

/// Applies one overlay-form layer onto the flattened tree `dst`, as overlayfs would show it.
fn apply_layer(src: &Path, dst: &Path) -> Result<()> {
    for entry in fs::read_dir(src).at("reading", src)? {
        let entry = entry.at("reading", src)?;
        let (from, to) = (entry.path(), dst.join(entry.file_name()));
        let meta = fs::symlink_metadata(&from).at("inspecting", &from)?;
        if is_whiteout(&meta) {
            remove_any(&to)?;
        } else if meta.is_dir() {
            apply_dir(&from, &meta, &to)?;
        } else {
            remove_any(&to)?;
            copy_leaf(&from, &meta, &to)?;
        }
    }
    Ok(())
}

fn apply_dir(from: &Path, meta: &Metadata, to: &Path) -> Result<()> {
    let existing = match fs::symlink_metadata(to) {
        Ok(m) => Some(m.is_dir()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).at("inspecting", to),
    };
    let opaque = is_opaque(from)?;
    if existing == Some(false) || (existing == Some(true) && opaque) {
        remove_any(to)?;
    }
    if existing != Some(true) || opaque {
        fs::create_dir(to).at("creating", to)?;
        mark_lower(to)?;
    }
    apply_layer(from, to)?;
    copy_metadata(from, meta, to)
}

/// Writes the difference between the rootfs and the lowers into the upper dir.
struct Differ<'a> {
    view: LowerView<'a>,
    rootfs: &'a Path,
    upper: &'a Path,
    /// Upper dirs created before their children, whose times must be set again at the end.
    created: Vec<PathBuf>,
}

impl Differ<'_> {
    fn diff_dir(&mut self, rel: &Path) -> Result<()> {
        let dir = self.rootfs.join(rel);
        let mut current = BTreeSet::<OsString>::new();
        for entry in fs::read_dir(&dir).at("reading", &dir)? {
            current.insert(entry.at("reading", &dir)?.file_name());
        }
        for gone in self.view.children(rel)?.difference(&current) {
            self.ensure_dir(rel)?;
            make_whiteout(&self.upper.join(rel).join(gone))?;
        }
        for name in current {
            self.diff_entry(&rel.join(name))?;
        }
        Ok(())
    }

    fn diff_entry(&mut self, rel: &Path) -> Result<()> {
        let cur = self.rootfs.join(rel);
        let meta = fs::symlink_metadata(&cur).at("inspecting", &cur)?;
        let Some((lower, lower_meta)) = self.view.lookup(rel)? else {
            return self.copy_new(rel, &meta, false);
        };
        if meta.is_dir() {
            let kept = lower_meta.is_dir()
                && get_xattr(&cur, LOWER_MARKER_XATTR)
                    .at("reading xattr of", &cur)?
                    .is_some();
            if !kept {
                return self.copy_new(rel, &meta, true);
            }
            if !same_metadata(&cur, &meta, &lower, &lower_meta)? {
                self.ensure_dir(rel)?;
            }
            return self.diff_dir(rel);
        }
        if !lower_meta.is_dir() && same_leaf(&cur, &meta, &lower, &lower_meta)? {
            return Ok(());
        }
        self.copy_new(rel, &meta, false)
    }

    /// Copies `rel` and everything under it to the upper dir.
    fn copy_new(&mut self, rel: &Path, meta: &Metadata, opaque: bool) -> Result<()> {
        if let Some(parent) = rel.parent() {
            self.ensure_dir(parent)?;
        }
        let to = self.upper.join(rel);
        copy_tree(&self.rootfs.join(rel), meta, &to)?;
        if opaque && meta.is_dir() {
            set_opaque(&to)?;
        }
        Ok(())
    }

    /// Creates `rel` and its missing ancestors in the upper dir, with the rootfs's metadata.
    fn ensure_dir(&mut self, rel: &Path) -> Result<()> {
        let mut partial = PathBuf::new();
        for part in rel.components() {
            partial.push(part);
            let to = self.upper.join(&partial);
            if to.symlink_metadata().is_ok() {
                continue;
            }
            let from = self.rootfs.join(&partial);
            let meta = fs::symlink_metadata(&from).at("inspecting", &from)?;
            fs::create_dir(&to).at("creating", &to)?;
            copy_metadata(&from, &meta, &to)?;
            self.created.push(partial.clone());
        }
        Ok(())
    }

    /// Sets the times of dirs that gained children after they were created, deepest first.
    fn restore_dir_times(&self) -> Result<()> {
        for rel in self.created.iter().rev() {
            let from = self.rootfs.join(rel);
            set_times(
                &fs::symlink_metadata(&from).at("inspecting", &from)?,
                &self.upper.join(rel),
            )?;
        }
        Ok(())
    }
}

/// Copies a whole tree, setting each directory's metadata after its children are written.
fn copy_tree(from: &Path, meta: &Metadata, to: &Path) -> Result<()> {
    if !meta.is_dir() {
        return copy_leaf(from, meta, to);
    }
    fs::create_dir(to).at("creating", to)?;
    for entry in fs::read_dir(from).at("reading", from)? {
        let entry = entry.at("reading", from)?;
        let child = entry.path();
        let child_meta = fs::symlink_metadata(&child).at("inspecting", &child)?;
        copy_tree(&child, &child_meta, &to.join(entry.file_name()))?;
    }
    copy_metadata(from, meta, to)
}

/// Whether a non-directory is unchanged; contents are compared only when mtimes lack
/// sub-second precision, where an edit within the same second would otherwise go unseen.
fn same_leaf(a: &Path, am: &Metadata, b: &Path, bm: &Metadata) -> Result<bool> {
    if !same_metadata(a, am, b, bm)? {
        return Ok(false);
    }
    if am.file_type().is_symlink() {
        return Ok(
            fs::read_link(a).at("reading link", a)? == fs::read_link(b).at("reading link", b)?
        );
    }
    if am.file_type().is_file() && am.mtime_nsec() == 0 {
        return Ok(fs::read(a).at("reading", a)? == fs::read(b).at("reading", b)?);
    }
    Ok(true)
}
