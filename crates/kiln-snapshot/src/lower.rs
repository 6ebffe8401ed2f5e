//! A read-only view of a stack of overlay-form layers, resolved without mounting them.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::{self, Metadata};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result};
use crate::fsutil::{is_opaque, is_whiteout};

/// What overlayfs would show for the given lowers (bottom-first).
pub(crate) struct LowerView<'a> {
    layers: &'a [PathBuf],
}

impl<'a> LowerView<'a> {
    pub(crate) fn new(layers: &'a [PathBuf]) -> Self {
        Self { layers }
    }

    /// The topmost visible entry at `rel`, or `None` when absent or hidden.
    pub(crate) fn lookup(&self, rel: &Path) -> Result<Option<(PathBuf, Metadata)>> {
        for layer in self.layers.iter().rev() {
            let path = layer.join(rel);
            match fs::symlink_metadata(&path) {
                Ok(m) if is_whiteout(&m) => return Ok(None),
                Ok(m) => return Ok(Some((path, m))),
                Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {}
                Err(e) => return Err(e).at("inspecting", &path),
            }
            if blocks_below(layer, rel)? {
                return Ok(None);
            }
        }
        Ok(None)
    }

    /// The names visible in directory `rel`.
    pub(crate) fn children(&self, rel: &Path) -> Result<BTreeSet<OsString>> {
        let mut visible = BTreeSet::new();
        let mut hidden = BTreeSet::new();
        for layer in self.layers.iter().rev() {
            let dir = layer.join(rel);
            match fs::symlink_metadata(&dir) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => break,
                Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
                    if blocks_below(layer, rel)? {
                        break;
                    }
                    continue;
                }
                Err(e) => return Err(e).at("inspecting", &dir),
            }
            for entry in fs::read_dir(&dir).at("reading", &dir)? {
                let entry = entry.at("reading", &dir)?;
                let name = entry.file_name();
                if visible.contains(&name) || hidden.contains(&name) {
                    continue;
                }
                let meta = entry.metadata().at("inspecting", &entry.path())?;
                if is_whiteout(&meta) {
                    hidden.insert(name)
                } else {
                    visible.insert(name)
                };
            }
            if is_opaque(&dir)? {
                break;
            }
        }
        Ok(visible)
    }
}

/// Whether some ancestor of `rel` in `layer` hides the layers below (non-directory or opaque).
fn blocks_below(layer: &Path, rel: &Path) -> Result<bool> {
    let mut ancestor = layer.to_path_buf();
    let Some(parent) = rel.parent() else {
        return Ok(false);
    };
    for part in parent.components() {
        ancestor.push(part);
        match fs::symlink_metadata(&ancestor) {
            Ok(m) if !m.is_dir() => return Ok(true),
            Ok(_) if is_opaque(&ancestor)? => return Ok(true),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e).at("inspecting", &ancestor),
        }
    }
    Ok(false)
}
