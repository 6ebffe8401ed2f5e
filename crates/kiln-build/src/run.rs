//! RUN: the command in a container on the step's snapshot, with the stage's environment, user,
//! working directory, network and mounts.

use kiln_dockerfile::instructions::{Form, NetworkMode, Run, SecurityMode};
use kiln_dockerfile::stages::Expanded;
use kiln_executor::{Network, RunSpec, StepIo, Stream};

use crate::engine::Shared;
use crate::error::{BuildError, Result};
use crate::metadata;
use crate::stage::StageRun;

/// Lines of output quoted in the error of a failed RUN.
const TAIL_LINES: usize = 10;

/// Runs one RUN instruction as a step making a layer.
pub(crate) fn run(st: &mut StageRun<'_, '_>, ex: &Expanded, r: &Run) -> Result<()> {
    if !r.command.heredocs.is_empty() {
        return Err(BuildError::Unsupported("RUN with a heredoc".into()));
    }
    if r.security.as_ref().map(|s| s.value) == Some(SecurityMode::Insecure) {
        return Err(BuildError::Unsupported("RUN --security=insecure".into()));
    }
    let config = st.builder.config();
    let args = metadata::command_args(config, &r.command);
    let runtime = metadata::runtime(config);
    let user = runtime.user().clone().unwrap_or_default();
    let cwd = runtime
        .working_dir()
        .clone()
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into());
    let env: Vec<String> = ex.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let network = match r.network.as_ref().map(|n| n.value) {
        Some(NetworkMode::None) => Network::None,
        Some(NetworkMode::Host) => Network::Host,
        Some(NetworkMode::Default) | None => st.shared.req.network,
    };
    let mounts: Vec<_> = r.mounts.iter().filter_map(|m| m.value.clone()).collect();
    let created_by = format!(
        "RUN {}{} # buildkit",
        arg_prefix(&ex.run_args),
        args.join(" ")
    );
    let shown = match r.command.form {
        Form::Shell => r
            .command
            .args
            .iter()
            .map(|a| a.value.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        Form::Exec => format!("{args:?}"),
    };
    st.step(format!("RUN {shown}"), |run, step| {
        let shared = run.shared;
        run.fs_step(created_by, |rootfs| {
            let prepared = crate::mounts::prepare(shared, &mounts, &cwd)?;
            let spec = RunSpec {
                env,
                cwd,
                user: kiln_executor::resolve_user(rootfs, &user)?,
                network,
                mounts: prepared.specs.clone(),
                ..RunSpec::new(rootfs, args.clone())
            };
            let _held: Vec<_> = prepared
                .locks
                .iter()
                .map(|l| l.lock().unwrap_or_else(|p| p.into_inner()))
                .collect();
            let mut io = ProgressIo { shared, step };
            let status = shared.executor.run(&spec, &mut io)?;
            if status.success() {
                return Ok(());
            }
            Err(BuildError::RunFailed {
                command: args.join(" "),
                code: status.code(),
                tail: last_lines(status.tail(), TAIL_LINES),
            })
        })
    })
}

/// BuildKit's `|N k=v ...` prefix naming the ARGs a RUN saw; empty without ARGs.
fn arg_prefix(args: &[(String, String)]) -> String {
    if args.is_empty() {
        return String::new();
    }
    let pairs: Vec<String> = args.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("|{} {} ", args.len(), pairs.join(" "))
}

/// The last `n` lines of `output`.
fn last_lines(output: &[u8], n: usize) -> String {
    let text = String::from_utf8_lossy(output);
    let lines: Vec<&str> = text.trim_end().lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Forwards a step's output to the build's progress.
struct ProgressIo<'s, 'a> {
    shared: &'s Shared<'a>,
    step: usize,
}

impl StepIo for ProgressIo<'_, '_> {
    fn output(&mut self, _stream: Stream, data: &[u8]) {
        self.shared.progress(|p| p.step_output(self.step, data));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arg_prefix_counts_args() {
        assert_eq!(arg_prefix(&[]), "");
        let args = [
            ("A".to_string(), "1".to_string()),
            ("B".into(), "x y".into()),
        ];
        assert_eq!(arg_prefix(&args), "|2 A=1 B=x y ");
    }

    #[test]
    fn tail_keeps_last_lines() {
        assert_eq!(last_lines(b"a\nb\nc\n", 2), "b\nc");
        assert_eq!(last_lines(b"", 3), "");
    }
}
