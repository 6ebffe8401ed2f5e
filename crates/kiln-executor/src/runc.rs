//! Runs steps with the `runc` binary: `runc run` in pass-through stdio mode (no terminal), so the
//! process writes straight into our pipes.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::bundle::Bundle;
use crate::error::{Error, IoContext, Result};
use crate::io::{ExitStatus, StepIo, stream_and_wait};
use crate::{Executor, RunSpec};

/// runc writes the container's pid here once the process has started; its absence after the run
/// means runc itself failed (bad spec, missing executable), which is an error, not an exit code.
const PID_FILE: &str = "pid";

/// Runs each step with `runc --root <state>/runc run --bundle <state>/bundles/run-XXXX <id>`.
#[derive(Debug, Clone)]
pub struct RuncExecutor {
    runc: PathBuf,
    state_dir: PathBuf,
}

impl RuncExecutor {
    /// Keeps bundles and runc's state under `state_dir`, which must lie outside every rootfs.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        Self {
            runc: PathBuf::from("runc"),
            state_dir: state_dir.into(),
        }
    }

    /// Uses this `runc` binary instead of the one on `PATH`.
    pub fn with_runc(mut self, runc: impl Into<PathBuf>) -> Self {
        self.runc = runc.into();
        self
    }

    /// Best-effort removal of the container's state, in case runc left it behind after a failure.
    fn delete(&self, root: &Path, id: &str) {
        let status = Command::new(&self.runc)
            .arg("--root")
            .arg(root)
            .args(["delete", "--force", id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Err(e) = status {
            tracing::warn!("runc delete {id}: {e}");
        }
    }
}

impl Executor for RuncExecutor {
    fn run(&self, spec: &RunSpec, io: &mut dyn StepIo) -> Result<ExitStatus> {
        let bundle = Bundle::create(spec, &self.state_dir.join("bundles"))?;
        let (root, id) = (self.state_dir.join("runc"), bundle.container_id());
        let child = Command::new(&self.runc)
            .arg("--root")
            .arg(&root)
            .args(["run", "--pid-file"])
            .arg(bundle.path().join(PID_FILE))
            .arg("--bundle")
            .arg(bundle.path())
            .arg(&id)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .at("running", &self.runc)?;
        let result = stream_and_wait(child, io);
        let started = bundle.path().join(PID_FILE).exists();
        self.delete(&root, &id);
        bundle.finish()?;
        let status = result?;
        if !started {
            return Err(Error::Runtime(
                String::from_utf8_lossy(status.tail()).trim().to_string(),
            ));
        }
        Ok(status)
    }
}
