//! Path resolution confined to an unpack destination.
//!
//! Every parent directory is opened with `openat2(RESOLVE_IN_ROOT)` relative
//! to a descriptor of the destination: the kernel resolves `..` and symlinks
//! (absolute or relative) as if the destination were `/`, so no path in a
//! layer can reach the host. The last component of an entry is then only
//! touched through `*at` calls that do not follow it.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// Directory mode for parents a layer omits, as containerd uses.
const IMPLICIT_DIR_MODE: u32 = 0o755;
/// `openat2` fails with EAGAIN if a rename raced with resolution.
const RESOLVE_RETRIES: usize = 16;

/// The unpack destination, held open.
pub(crate) struct Root {
    fd: OwnedFd,
}

impl Root {
    pub fn open(dest: &Path) -> io::Result<Self> {
        let fd = rustix::fs::open(dest, dir_flags(), Mode::empty())?;
        Ok(Self { fd })
    }

    /// Opens directory `comps` under the root, creating missing components
    /// (mode 0755) if `create` is set.
    pub fn dir(&self, comps: &[&[u8]], create: bool) -> io::Result<OwnedFd> {
        match self.resolve(comps) {
            Err(Errno::NOENT) if create => {}
            other => return other.map_err(Into::into),
        }
        let mut fd = self.resolve(&[])?;
        for i in 0..comps.len() {
            fd = match self.resolve(&comps[..=i]) {
                Err(Errno::NOENT) => {
                    let mode = Mode::from_raw_mode(IMPLICIT_DIR_MODE);
                    match rustix::fs::mkdirat(&fd, comps[i], mode) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(e.into()),
                    }
                    self.resolve(&comps[..=i])?
                }
                other => other?,
            };
        }
        Ok(fd)
    }

    fn resolve(&self, comps: &[&[u8]]) -> rustix::io::Result<OwnedFd> {
        let path = if comps.is_empty() {
            b".".to_vec()
        } else {
            comps.join(&b'/')
        };
        let how = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
        let mut attempt = 0;
        loop {
            match rustix::fs::openat2(&self.fd, &path, dir_flags(), Mode::empty(), how) {
                Err(Errno::AGAIN) if attempt < RESOLVE_RETRIES => attempt += 1,
                other => return other,
            }
        }
    }
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC
}

/// A path naming `name` inside the directory open as `dir`, for the few
/// calls that have no `*at` form (`lsetxattr`, recursive removal). The
/// magic link pins the directory; `name` is a single component.
pub(crate) fn proc_path(dir: BorrowedFd<'_>, name: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let mut p = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    p.push(std::ffi::OsStr::from_bytes(name));
    p
}
