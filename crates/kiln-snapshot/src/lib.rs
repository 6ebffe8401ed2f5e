//! Filesystem snapshots for build steps: overlayfs, with a copy fallback.
//!
//! A step's root filesystem stacks the parent's layers (read-only directories in overlay form:
//! whiteouts are 0/0 character devices, opaque directories carry `trusted.overlay.opaque=y`)
//! under an upper directory that collects the step's changes. Both snapshotters leave that upper
//! directory in the same overlay form, so the layer writer downstream never knows which ran.
//!
//! Lowers are always given bottom-first: `lowers[0]` is the base image's first layer.

mod copy;
mod error;
mod fsutil;
mod lower;
mod overlay;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub use copy::CopySnapshotter;
pub use error::{Error, Result};
pub use overlay::OverlaySnapshotter;

/// Creates the root filesystem for one build step.
pub trait Snapshotter: Send + Sync {
    /// Stacks `lowers` (bottom-first) under a fresh upper directory inside `work_dir`.
    ///
    /// `work_dir` must be empty or absent and is owned by the snapshot afterwards; the upper
    /// directory is `work_dir/upper` and outlives the snapshot.
    fn prepare(&self, lowers: &[PathBuf], work_dir: &Path) -> Result<Box<dyn ActiveSnapshot>>;

    /// A short name for logs ("overlay" or "copy").
    fn name(&self) -> &'static str;
}

/// A prepared root filesystem; unmounted (or released) on drop.
pub trait ActiveSnapshot: Send {
    /// The directory to use as the container's root.
    fn rootfs(&self) -> &Path;

    /// Where the step's changes end up, in overlay form. Complete only after [`finish`].
    ///
    /// [`finish`]: ActiveSnapshot::finish
    fn upper(&self) -> &Path;

    /// Releases the root filesystem and completes the upper directory, returning its path.
    fn finish(self: Box<Self>) -> Result<PathBuf>;
}

/// Picks overlayfs when it can be mounted under `work_dir`, else the copy snapshotter.
///
/// The answer depends on the filesystem and privileges. It is found on first use, so a build
/// whose steps are all cached mounts nothing: the first overlay a step needs settles it when it
/// mounts; only if that mount fails does a throw-away probe mount under `work_dir` decide
/// between reporting the error (overlayfs works) and copying instead.
pub fn detect(work_dir: &Path) -> Box<dyn Snapshotter> {
    Box::new(Detected {
        work_dir: work_dir.to_path_buf(),
        chosen: OnceLock::new(),
    })
}

/// The snapshotter [`detect`] picks, chosen when first needed.
struct Detected {
    work_dir: PathBuf,
    chosen: OnceLock<Box<dyn Snapshotter>>,
}

impl Detected {
    /// The choice, probing for it if no mount has settled it yet.
    fn get(&self) -> &dyn Snapshotter {
        self.chosen
            .get_or_init(|| match overlay::probe(&self.work_dir) {
                Ok(()) => Box::new(OverlaySnapshotter),
                Err(e) => {
                    tracing::info!(
                        "overlayfs unavailable under {}, copying instead: {e}",
                        self.work_dir.display()
                    );
                    Box::new(CopySnapshotter)
                }
            })
            .as_ref()
    }

    /// The first snapshot with lowers: an overlay if it mounts, else what the probe says.
    fn first(&self, lowers: &[PathBuf], work_dir: &Path) -> Result<Box<dyn ActiveSnapshot>> {
        let failed = match OverlaySnapshotter.prepare(lowers, work_dir) {
            Ok(snapshot) => {
                self.chosen.get_or_init(|| Box::new(OverlaySnapshotter));
                return Ok(snapshot);
            }
            Err(e) => e,
        };
        let chosen = self.get();
        if chosen.name() == OverlaySnapshotter.name() {
            return Err(failed);
        }
        match std::fs::remove_dir_all(work_dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::Io {
                    op: "clearing",
                    path: work_dir.to_path_buf(),
                    source: e,
                });
            }
            _ => {}
        }
        chosen.prepare(lowers, work_dir)
    }
}

impl Snapshotter for Detected {
    fn prepare(&self, lowers: &[PathBuf], work_dir: &Path) -> Result<Box<dyn ActiveSnapshot>> {
        match self.chosen.get() {
            Some(chosen) => chosen.prepare(lowers, work_dir),
            // Both snapshotters use the upper dir itself when there is nothing below.
            None if lowers.is_empty() => Ok(Box::new(PlainSnapshot::create(work_dir)?)),
            None => self.first(lowers, work_dir),
        }
    }

    fn name(&self) -> &'static str {
        self.get().name()
    }
}

/// The snapshot of a step with no parent layers: the upper directory is the rootfs itself.
struct PlainSnapshot {
    upper: PathBuf,
}

impl PlainSnapshot {
    fn create(work_dir: &Path) -> Result<Self> {
        let upper = work_dir.join("upper");
        std::fs::create_dir_all(&upper).map_err(|source| Error::Io {
            op: "creating",
            path: upper.clone(),
            source,
        })?;
        Ok(Self { upper })
    }
}

impl ActiveSnapshot for PlainSnapshot {
    fn rootfs(&self) -> &Path {
        &self.upper
    }

    fn upper(&self) -> &Path {
        &self.upper
    }

    fn finish(self: Box<Self>) -> Result<PathBuf> {
        Ok(self.upper)
    }
}
