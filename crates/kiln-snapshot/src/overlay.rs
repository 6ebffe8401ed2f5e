//! The overlayfs snapshotter.
//!
//! Mount options follow what BuildKit's containerd snapshotter uses: `index=off` (lowers are
//! shared between many mounts, so no inode index ties them to one upper) and `redirect_dir=off`
//! plus `metacopy=off`, so a renamed directory or a chmod is copied up in full rather than
//! recorded as an overlay-private xattr that a layer writer cannot express.
//!
//! `volatile` (Linux 5.10+; older kernels mount without it): overlayfs then skips syncing the
//! upper filesystem, which it otherwise does for the whole filesystem (a `syncfs`) at every
//! unmount, i.e. once per step: tens to hundreds of milliseconds on a busy disk. What a step
//! leaves is made durable where it matters: the layer blob is fsynced when it is committed; the
//! upper directory becomes an unpacked-layer cache entry, which (like unpacked base layers) is
//! not synced. It also turns `fsync` inside RUN steps into a no-op, as their root filesystem is
//! thrown away or re-derived from the committed blob anyway.
//!
//! Long lower lists: legacy `mount(2)` passes options in one page, which absolute layer paths
//! fill after a few dozen layers. Each lower (and the upper and work dirs) is opened as an
//! `O_PATH` descriptor and named `/proc/self/fd/N` instead: about 18 bytes a layer whatever the
//! real path, so about 200 lowers fit (overlayfs itself stops at 500), and paths containing `,`
//! or `:` need no escaping.
//! Unlike `fchdir` plus relative paths, this changes no process-wide state, so it is safe while
//! other threads run.

use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, open};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::Mode;

use crate::error::{Error, IoContext, Result};
use crate::fsutil::{is_opaque, same_metadata, strip_overlay_xattrs};
use crate::lower::LowerView;
use crate::{ActiveSnapshot, PlainSnapshot, Snapshotter};

/// The size limit of legacy mount options (one page, NUL included).
const MAX_OPTIONS: usize = 4095;

/// Mounts an overlay of the lowers with a fresh upper directory.
#[derive(Debug, Clone, Copy, Default)]
pub struct OverlaySnapshotter;

impl Snapshotter for OverlaySnapshotter {
    fn prepare(&self, lowers: &[PathBuf], work_dir: &Path) -> Result<Box<dyn ActiveSnapshot>> {
        if lowers.is_empty() {
            return Ok(Box::new(PlainSnapshot::create(work_dir)?));
        }
        Ok(Box::new(OverlaySnapshot::mount(lowers, work_dir)?))
    }

    fn name(&self) -> &'static str {
        "overlay"
    }
}

/// A mounted overlay; unmounted on drop if [`ActiveSnapshot::finish`] was not called.
struct OverlaySnapshot {
    lowers: Vec<PathBuf>,
    rootfs: PathBuf,
    upper: PathBuf,
    work: PathBuf,
    mounted: bool,
}

impl OverlaySnapshot {
    fn mount(lowers: &[PathBuf], work_dir: &Path) -> Result<Self> {
        let (rootfs, upper, work) = (
            work_dir.join("rootfs"),
            work_dir.join("upper"),
            work_dir.join("work"),
        );
        for dir in [&rootfs, &upper, &work] {
            fs::create_dir_all(dir).at("creating", dir)?;
        }
        mount_overlay(lowers, &upper, &work, &rootfs)?;
        Ok(Self {
            lowers: lowers.to_vec(),
            rootfs,
            upper,
            work,
            mounted: true,
        })
    }
}

impl ActiveSnapshot for OverlaySnapshot {
    fn rootfs(&self) -> &Path {
        &self.rootfs
    }

    fn upper(&self) -> &Path {
        &self.upper
    }

    fn finish(mut self: Box<Self>) -> Result<PathBuf> {
        unmount(&self.rootfs)?;
        self.mounted = false;
        strip_tree(&self.upper)?;
        prune_unchanged_dirs(&LowerView::new(&self.lowers), &self.upper, Path::new(""))?;
        fs::remove_dir_all(&self.work).at("removing", &self.work)?;
        fs::remove_dir(&self.rootfs).at("removing", &self.rootfs)?;
        Ok(std::mem::take(&mut self.upper))
    }
}

impl Drop for OverlaySnapshot {
    fn drop(&mut self) {
        if self.mounted {
            if let Err(e) = umount2(&self.rootfs, MntFlags::MNT_DETACH) {
                tracing::warn!("unmounting {}: {e}", self.rootfs.display());
            }
        }
    }
}

/// How often, and how far apart, an unmount that finds the overlay busy is tried again.
const UNMOUNT_TRIES: u32 = 50;
const UNMOUNT_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

/// Unmounts the overlay at `rootfs`. Right after a container exits, the kernel may still hold
/// its mount namespace's references for a moment (released asynchronously, after `wait`
/// returns), and the unmount then fails with `EBUSY`: try again for up to a second, as
/// containerd does, before reporting it.
fn unmount(rootfs: &Path) -> Result<()> {
    let mut tries = 1;
    loop {
        match umount2(rootfs, MntFlags::empty()) {
            Err(nix::errno::Errno::EBUSY) if tries < UNMOUNT_TRIES => {
                tries += 1;
                std::thread::sleep(UNMOUNT_PAUSE);
            }
            other => {
                return other.map_err(|source| Error::Unmount {
                    target: rootfs.to_path_buf(),
                    source,
                });
            }
        }
    }
}

/// Opens `path` as an `O_PATH` directory descriptor, to be named through `/proc/self/fd`.
fn open_dir(path: &Path) -> Result<OwnedFd> {
    let fd = open(
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    );
    match fd {
        Ok(fd) => {
            // SAFETY: `open` just returned this descriptor and nothing else owns it.
            Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
        }
        Err(nix::Error::ENOTDIR) => Err(Error::LowerNotDir(path.to_path_buf())),
        Err(e) => Err(e).at("opening", path),
    }
}

fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// Mounts the overlay; the descriptors only need to live for the duration of the call.
fn mount_overlay(lowers: &[PathBuf], upper: &Path, work: &Path, target: &Path) -> Result<()> {
    let lower_fds = lowers
        .iter()
        .rev()
        .map(|l| open_dir(l))
        .collect::<Result<Vec<_>>>()?;
    let (upper_fd, work_fd) = (open_dir(upper)?, open_dir(work)?);
    let lowerdir = lower_fds.iter().map(fd_path).collect::<Vec<_>>().join(":");
    let options = format!(
        "lowerdir={lowerdir},upperdir={},workdir={},index=off,redirect_dir=off,metacopy=off",
        fd_path(&upper_fd),
        fd_path(&work_fd)
    );
    if options.len() > MAX_OPTIONS {
        return Err(Error::TooManyLowers {
            count: lowers.len(),
        });
    }
    let mount_with = |options: &str| {
        mount(
            Some("overlay"),
            target,
            Some("overlay"),
            MsFlags::empty(),
            Some(options),
        )
    };
    let volatile = format!("{options},volatile");
    // EINVAL: a kernel without `volatile`; any other error fails the same way without it.
    let mounted = if volatile.len() <= MAX_OPTIONS {
        match mount_with(&volatile) {
            Err(nix::Error::EINVAL) => mount_with(&options),
            other => other,
        }
    } else {
        mount_with(&options)
    };
    mounted.map_err(|source| Error::Mount {
        target: target.to_path_buf(),
        source,
    })
}

/// Strips overlayfs' bookkeeping xattrs from every entry under `dir`.
fn strip_tree(dir: &Path) -> Result<()> {
    for entry in fs::read_dir(dir).at("reading", dir)? {
        let path = entry.at("reading", dir)?.path();
        strip_overlay_xattrs(&path)?;
        if fs::symlink_metadata(&path)
            .at("inspecting", &path)?
            .is_dir()
        {
            strip_tree(&path)?;
        }
    }
    Ok(())
}

/// Removes directories that overlayfs copied up but that hold no change: empty, not opaque, and
/// with the same metadata as in the lowers (left behind e.g. by a mountpoint stub that was
/// removed again). Returns whether `rel` itself still holds something.
fn prune_unchanged_dirs(view: &LowerView<'_>, upper: &Path, rel: &Path) -> Result<bool> {
    let dir = upper.join(rel);
    let mut keep = false;
    for entry in fs::read_dir(&dir).at("reading", &dir)? {
        let entry = entry.at("reading", &dir)?;
        let child = rel.join(entry.file_name());
        let is_dir = entry.file_type().at("inspecting", &entry.path())?.is_dir();
        keep |= !is_dir || prune_unchanged_dirs(view, upper, &child)?;
    }
    if keep || rel.as_os_str().is_empty() || is_opaque(&dir)? {
        return Ok(true);
    }
    let meta = fs::symlink_metadata(&dir).at("inspecting", &dir)?;
    let unchanged = match view.lookup(rel)? {
        Some((lower, lm)) if lm.is_dir() => same_metadata(&dir, &meta, &lower, &lm)?,
        _ => false,
    };
    if unchanged {
        fs::remove_dir(&dir).at("removing", &dir)?;
    }
    Ok(!unchanged)
}

/// Mounts and unmounts a one-layer overlay under `work_dir` to see whether overlayfs works there.
pub(crate) fn probe(work_dir: &Path) -> Result<()> {
    fs::create_dir_all(work_dir).at("creating", work_dir)?;
    let tmp = tempdir_in(work_dir)?;
    let lower = tmp.join("lower");
    fs::create_dir_all(&lower).at("creating", &lower)?;
    let result =
        OverlaySnapshot::mount(&[lower], &tmp).and_then(|s| Box::new(s).finish().map(drop));
    fs::remove_dir_all(&tmp).at("removing", &tmp)?;
    result
}

/// A fresh, uniquely named directory under `parent`.
fn tempdir_in(parent: &Path) -> Result<PathBuf> {
    for n in 0..1000u32 {
        let dir = parent.join(format!(".overlay-probe-{}-{n}", std::process::id()));
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).at("creating", &dir),
        }
    }
    Err(Error::Io {
        op: "creating probe dir in",
        path: parent.to_path_buf(),
        source: std::io::ErrorKind::AlreadyExists.into(),
    })
}
