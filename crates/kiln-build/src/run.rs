//! RUN: the command in a container on the step's snapshot, with the stage's environment, user,
//! working directory, network and mounts.

use kiln_dockerfile::instructions::{
    CommandLine, Form, Mount, MountType, NetworkMode, Run, SecurityMode,
};
use kiln_dockerfile::stages::Expanded;
use kiln_executor::{MountSpec, Network, RunSpec, StepIo, Stream};

use crate::cache::{KeyBuilder, source_id};
use crate::engine::Shared;
use crate::error::{BuildError, Result, io_err};
use crate::metadata;
use crate::stage::StageRun;

/// Lines of output quoted in the error of a failed RUN.
const TAIL_LINES: usize = 10;

/// Runs one RUN instruction as a step making a layer.
pub(crate) fn run(st: &mut StageRun<'_, '_>, ex: &Expanded, r: &Run) -> Result<()> {
    if r.security.as_ref().map(|s| s.value) == Some(SecurityMode::Insecure) {
        return Err(BuildError::Unsupported("RUN --security=insecure".into()));
    }
    let config = st.builder.config();
    let (args, script) = heredoc_args(config, &r.command)?;
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
    let spec = KeySpec {
        args: &args,
        script: script.as_ref(),
        env: &env,
        user: &user,
        cwd: &cwd,
        network,
        mounts: &mounts,
    };
    let security = format!("{:?}", r.security.as_ref().map(|s| s.value));
    for id in crate::mounts::cache_ids(&mounts, &cwd) {
        crate::cache_export::note_cache_mount(st.shared, &id);
    }
    st.step(format!("RUN {shown}"), |run, step| {
        let shared = run.shared;
        let key = key(run, &spec, &security)?;
        run.fs_step(key, created_by, |rootfs| {
            let prepared = crate::mounts::prepare(shared, &mounts, &cwd)?;
            let mut specs = prepared.specs.clone();
            let script_dir = shared.store.tmp_dir()?;
            if let Some((name, body)) = &script {
                specs.push(script_mount(script_dir.path(), name, body)?);
            }
            let spec = RunSpec {
                env: env.iter().chain(&prepared.env).cloned().collect(),
                cwd: cwd.clone(),
                user: kiln_executor::resolve_user(rootfs, &user)?,
                network,
                mounts: specs,
                ..RunSpec::new(rootfs, args.clone())
            };
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

/// What a RUN's cache key covers besides its parent (see [`crate::cache`]).
struct KeySpec<'a> {
    args: &'a [String],
    script: Option<&'a Script>,
    env: &'a [String],
    user: &'a str,
    cwd: &'a str,
    network: Network,
    mounts: &'a [Mount],
}

/// The RUN's key; `None` when a bind mount's source cannot be identified (it then runs).
fn key(st: &StageRun<'_, '_>, spec: &KeySpec<'_>, security: &str) -> Result<Option<String>> {
    let mut k = KeyBuilder::new(&st.key, "run");
    k.list(spec.args)
        .list(
            &spec
                .script
                .map_or_else(Vec::new, |(n, b)| vec![n.as_str(), b.as_str()]),
        )
        .list(spec.env)
        .field(spec.user)
        .field(spec.cwd)
        .field(&format!("{:?}", spec.network))
        .field(security);
    let mounts: Vec<String> = spec.mounts.iter().map(|m| format!("{m:?}")).collect();
    k.list(&mounts);
    for m in spec.mounts.iter().filter(|m| m.kind == MountType::Bind) {
        let path = m.source.clone().unwrap_or_else(|| "/".into());
        let Some(id) = source_id(st.shared, m.source_ref.as_ref(), &[path])? else {
            return Ok(None);
        };
        k.field(&id);
    }
    Ok(Some(k.finish()))
}

/// Where a shebang heredoc's script is mounted (BuildKit's path).
const PIPES: &str = "/dev/pipes";

/// A heredoc script to mount: its name and body.
type Script = (String, String);

/// The argv of a RUN with heredocs resolved as BuildKit does, plus the script to mount when the
/// command is a lone heredoc starting with `#!` (run as a file, not through the shell).
fn heredoc_args(
    config: &kiln_image::ImageConfig,
    c: &CommandLine,
) -> Result<(Vec<String>, Option<Script>)> {
    if c.heredocs.is_empty() {
        return Ok((metadata::command_args(config, c), None));
    }
    let (Form::Shell, [line]) = (&c.form, c.args.as_slice()) else {
        return Err(BuildError::Invalid(
            "parsing produced an invalid run command".into(),
        ));
    };
    let mut args = metadata::shell(config);
    match c.heredocs.as_slice() {
        [doc] if is_lone_heredoc(&line.value, &doc.name) => {
            if doc.content.starts_with("#!") {
                let path = format!("{PIPES}/{}", doc.name);
                return Ok((vec![path], Some((doc.name.clone(), doc.content.clone()))));
            }
            args.push(doc.content.clone());
        }
        docs => {
            let mut full = line.value.clone();
            for doc in docs {
                full.push('\n');
                full.push_str(&doc.content);
                full.push_str(&doc.name);
            }
            args.push(full);
        }
    }
    Ok((args, None))
}

/// Whether `line` is only a heredoc marker for `name` (`<<EOF`, `<<-"EOF"`).
fn is_lone_heredoc(line: &str, name: &str) -> bool {
    let Some(rest) = line.trim().strip_prefix("<<") else {
        return false;
    };
    let rest = rest.strip_prefix('-').unwrap_or(rest);
    let unquoted = ['"', '\'']
        .iter()
        .find_map(|q| rest.strip_prefix(*q).and_then(|r| r.strip_suffix(*q)))
        .unwrap_or(rest);
    unquoted == name
}

/// Writes a shebang heredoc's script (mode 0755) and mounts it read-only under `/dev/pipes`.
fn script_mount(dir: &std::path::Path, name: &str, body: &str) -> Result<MountSpec> {
    use std::os::unix::fs::PermissionsExt;
    let file = dir.join("script");
    std::fs::write(&file, body).map_err(io_err("writing", &file))?;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755))
        .map_err(io_err("setting mode of", &file))?;
    Ok(MountSpec::Bind {
        source: file,
        target: format!("{PIPES}/{name}"),
        readonly: true,
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
    fn lone_heredoc_markers() {
        assert!(is_lone_heredoc("<<EOF", "EOF"));
        assert!(is_lone_heredoc(" <<-'EOF' ", "EOF"));
        assert!(!is_lone_heredoc("<<EOF bash", "EOF"));
        assert!(!is_lone_heredoc("cat <<EOF", "EOF"));
    }

    #[test]
    fn tail_keeps_last_lines() {
        assert_eq!(last_lines(b"a\nb\nc\n", 2), "b\nc");
        assert_eq!(last_lines(b"", 3), "");
    }
}
