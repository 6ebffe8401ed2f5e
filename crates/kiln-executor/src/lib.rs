//! Runs RUN steps in isolated containers (libcontainer in-process or runc).
//!
//! Both executors share one OCI runtime spec built from a [`RunSpec`] (see [`build_spec`]) and
//! the same per-run setup: `/etc/hosts`, `/etc/resolv.conf` and `/etc/hostname` are bind-mounted
//! from files kept outside the rootfs, and any mountpoint the runtime has to create inside the
//! rootfs is removed again afterwards (with its parent's timestamps restored), so none of it
//! reaches the step's layer — what BuildKit's mount-stub cleaner does.

mod bundle;
mod error;
mod io;
mod libcontainer_exec;
mod rootpath;
mod runc;
mod spec;
mod user;

use std::path::PathBuf;

pub use error::{Error, Result};
pub use io::{ExitStatus, StepIo, Stream, TAIL_BYTES};
pub use libcontainer_exec::{HELPER_ARG, LibcontainerExecutor, helper_main};
pub use rootpath::resolve_in_root;
pub use runc::RuncExecutor;
pub use spec::build_spec;
pub use user::{UserSpec, resolve_user};

/// The hostname BuildKit gives RUN steps.
pub const DEFAULT_HOSTNAME: &str = "buildkitsandbox";

/// `PATH` used when the step's environment sets none (BuildKit's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Runs one step's process to completion.
pub trait Executor: Send + Sync {
    /// Runs `spec`, streaming its output to `io` as it is produced.
    ///
    /// A process that exits non-zero is not an error: the code is in the returned status.
    fn run(&self, spec: &RunSpec, io: &mut dyn StepIo) -> Result<ExitStatus>;
}

/// Which network namespace the step gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Network {
    /// The host's network (kiln's default for RUN). BuildKit's default is a CNI bridge or the
    /// host network depending on its setup; kiln has no bridge, and the host network gives the
    /// same reachability for downloads, so it is what `--network=default` means here.
    #[default]
    Host,
    /// A new, empty network namespace: only `lo`, left down as runc leaves it.
    None,
}

/// An extra mount for the step (`RUN --mount`, cache dirs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSpec {
    /// Bind-mounts a host path.
    Bind {
        /// Host path.
        source: PathBuf,
        /// Absolute path inside the container.
        target: String,
        /// Mount read-only.
        readonly: bool,
    },
    /// A fresh tmpfs.
    Tmpfs {
        /// Absolute path inside the container.
        target: String,
    },
}

impl MountSpec {
    /// Where the mount appears inside the container.
    pub fn target(&self) -> &str {
        match self {
            Self::Bind { target, .. } | Self::Tmpfs { target } => target,
        }
    }
}

/// Everything needed to run one step's process.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// The command line, already wrapped in the shell for shell-form RUN.
    pub args: Vec<String>,
    /// `KEY=value` pairs; `PATH` defaults to [`DEFAULT_PATH`] when absent.
    pub env: Vec<String>,
    /// Working directory inside the container (created if missing).
    pub cwd: String,
    /// Who the process runs as (see [`resolve_user`]).
    pub user: UserSpec,
    /// The container's hostname, also written to `/etc/hostname` and `/etc/hosts`.
    pub hostname: String,
    /// Extra `/etc/hosts` entries (`--add-host`), as `(name, address)`.
    pub extra_hosts: Vec<(String, String)>,
    /// Network namespace choice.
    pub network: Network,
    /// Extra mounts, applied after the standard ones.
    pub mounts: Vec<MountSpec>,
    /// The root filesystem (e.g. a snapshot's rootfs); must be an absolute path.
    pub rootfs: PathBuf,
    /// Mount the rootfs read-only.
    pub readonly_rootfs: bool,
}

impl RunSpec {
    /// A spec running `args` as root in `/` on `rootfs`, with BuildKit's defaults elsewhere.
    pub fn new(rootfs: impl Into<PathBuf>, args: Vec<String>) -> Self {
        Self {
            args,
            env: Vec::new(),
            cwd: "/".into(),
            user: UserSpec::default(),
            hostname: DEFAULT_HOSTNAME.into(),
            extra_hosts: Vec::new(),
            network: Network::default(),
            mounts: Vec::new(),
            rootfs: rootfs.into(),
            readonly_rootfs: false,
        }
    }
}
