//! Runs steps in-process with youki's `libcontainer`, from a re-executed helper process.
//!
//! libcontainer forks (clone3) the caller to create the container. Doing that from a process
//! with async worker threads is unsafe (locks held by other threads stay locked in the child),
//! so the executor re-executes the current binary (`/proc/self/exe` unless told otherwise) in a
//! helper mode: a fresh single-threaded process that creates the container, waits for it and
//! reports back. The container's output goes straight into the helper's stdout/stderr pipes.
//!
//! Binaries hook the helper in by calling [`helper_main`] first thing in `main`.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::default::DefaultExecutor;
use nix::sys::wait::{WaitStatus, waitpid};

use crate::bundle::Bundle;
use crate::error::{Error, IoContext, Result};
use crate::io::{ExitStatus, StepIo, stream_and_wait};
use crate::{Executor, RunSpec};

/// `argv[1]` that switches a binary calling [`helper_main`] into helper mode.
pub const HELPER_ARG: &str = "__kiln-executor-helper";

/// Where the helper writes its outcome inside the bundle.
const RESULT_FILE: &str = "result";

/// Runs each step through libcontainer in a re-executed helper process.
#[derive(Debug, Clone)]
pub struct LibcontainerExecutor {
    helper: PathBuf,
    state_dir: PathBuf,
}

impl LibcontainerExecutor {
    /// Keeps bundles and container state under `state_dir`; the helper is `/proc/self/exe`,
    /// so the running binary must call [`helper_main`].
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        Self {
            helper: PathBuf::from("/proc/self/exe"),
            state_dir: state_dir.into(),
        }
    }

    /// Uses another binary (one that calls [`helper_main`]) as the helper.
    pub fn with_helper(mut self, exe: impl Into<PathBuf>) -> Self {
        self.helper = exe.into();
        self
    }
}

impl Executor for LibcontainerExecutor {
    fn run(&self, spec: &RunSpec, io: &mut dyn StepIo) -> Result<ExitStatus> {
        let bundle = Bundle::create(spec, &self.state_dir.join("bundles"))?;
        let child = Command::new(&self.helper)
            .arg(HELPER_ARG)
            .arg(bundle.path())
            .arg(self.state_dir.join("libcontainer"))
            .arg(bundle.container_id())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .at("running helper", &self.helper)?;
        let helper_status = stream_and_wait(child, io)?;
        let outcome = read_outcome(bundle.path(), &helper_status);
        bundle.finish()?;
        Ok(ExitStatus::new(outcome?, helper_status.tail().to_vec()))
    }
}

/// The container's exit code as reported by the helper.
fn read_outcome(bundle: &Path, helper: &ExitStatus) -> Result<i32> {
    let text = fs::read_to_string(bundle.join(RESULT_FILE))
        .map_err(|_| Error::HelperDied(format!("exit code {}", helper.code())))?;
    match text.split_once(' ') {
        Some(("exit", code)) => code
            .trim()
            .parse()
            .map_err(|_| Error::HelperDied(format!("bad result {text:?}"))),
        Some(("error", message)) => Err(Error::Runtime(message.to_string())),
        _ => Err(Error::HelperDied(format!("bad result {text:?}"))),
    }
}

/// Call first thing in `main`: in helper mode (`argv[1] == HELPER_ARG`) this runs the container
/// and exits the process; otherwise it returns at once.
pub fn helper_main() {
    let args: Vec<OsString> = std::env::args_os().collect();
    if args.get(1).is_none_or(|a| a != HELPER_ARG) {
        return;
    }
    let [bundle, root, id] =
        [2, 3, 4].map(|i| PathBuf::from(args.get(i).cloned().unwrap_or_default()));
    let outcome = match run_container(&bundle, &root, &id.to_string_lossy()) {
        Ok(code) => format!("exit {code}"),
        Err(e) => format!("error {e}"),
    };
    let written = fs::write(bundle.join(RESULT_FILE), outcome);
    std::process::exit(if written.is_ok() { 0 } else { 1 });
}

/// Creates, starts and waits for the container; removes its state whatever happens.
fn run_container(bundle: &Path, root: &Path, id: &str) -> Result<i32> {
    fs::create_dir_all(root).at("creating", root)?;
    let runtime = |e: libcontainer::error::LibcontainerError| Error::Runtime(e.to_string());
    let mut container = ContainerBuilder::new(id.to_string(), SyscallType::default())
        .with_root_path(root)
        .map_err(runtime)?
        .with_executor(DefaultExecutor {})
        .as_init(bundle)
        .with_systemd(false)
        .with_detach(false)
        .build()
        .map_err(runtime)?;
    let waited = container.start().map_err(runtime).and_then(|()| {
        let pid = container
            .pid()
            .ok_or_else(|| Error::Runtime("container has no pid".into()))?;
        wait_exit(pid)
    });
    let deleted = container.delete(true).map_err(runtime);
    let code = waited?;
    deleted?;
    Ok(code)
}

fn wait_exit(pid: nix::unistd::Pid) -> Result<i32> {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, signal, _)) => return Ok(128 + signal as i32),
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(e) => return Err(e).at("waiting for", "container init"),
        }
    }
}
