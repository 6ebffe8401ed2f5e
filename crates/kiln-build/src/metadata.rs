//! Metadata-only instructions: how each changes the image config, and the history text BuildKit
//! records for it. Shared by the build and by `import --change`.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use kiln_dockerfile::instructions::{
    CommandLine, Form, HealthTest, Healthcheck, Instruction, KeyValues,
};
use kiln_dockerfile::stages::StageOptions;
use kiln_image::oci_spec::image::Config;
use kiln_image::{HealthConfig, ImageConfig};

use crate::error::{BuildError, Result};

/// The shell of shell-form instructions when no SHELL is set.
pub const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

/// What a stage's config knows beyond the image config itself.
#[derive(Debug, Clone, Default)]
pub(crate) struct MetaState {
    /// CMD was set in this stage: a later ENTRYPOINT keeps it (else it resets the inherited one).
    pub cmd_set: bool,
}

/// What [`apply`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Applied {
    /// The config changed; BuildKit records this history text (`empty_layer: true`).
    History(String),
    /// The config changed without a history entry (ONBUILD, as BuildKit does).
    Silent,
    /// Not a metadata instruction: RUN, COPY, ADD, WORKDIR or FROM change the filesystem.
    NotMetadata,
}

/// Applies a metadata-only instruction to `config`.
pub(crate) fn apply(
    config: &mut ImageConfig,
    state: &mut MetaState,
    instruction: &Instruction,
) -> Result<Applied> {
    let text = match instruction {
        Instruction::Env(kv) => env(config, kv),
        Instruction::Label(kv) => label(config, kv),
        Instruction::Arg(arg) => {
            let decls: Vec<String> = arg
                .args
                .iter()
                .map(|d| match &d.value {
                    Some(v) => format!("{}={v}", d.name.value),
                    None => d.name.value.clone(),
                })
                .collect();
            format!("ARG {}", decls.join(" "))
        }
        Instruction::User(u) => {
            config.update_runtime(|c| {
                c.set_user(Some(u.user.value.clone()));
            });
            format!("USER {}", u.user.value)
        }
        Instruction::Expose(e) => expose(config, e.ports.iter().map(|p| p.value.as_str()))?,
        Instruction::Volume(v) => volume(config, v.paths.iter().map(|p| p.value.clone())),
        Instruction::Shell(s) => {
            let shell: Vec<String> = s.shell.iter().map(|w| w.value.clone()).collect();
            let text = format!("SHELL [{}]", shell.join(" "));
            config.docker.shell = Some(shell);
            text
        }
        Instruction::Healthcheck(h) => healthcheck(config, h),
        Instruction::StopSignal(s) => {
            config.update_runtime(|c| {
                c.set_stop_signal(Some(s.signal.value.clone()));
            });
            format!("STOPSIGNAL {}", s.signal.value)
        }
        Instruction::Onbuild(o) => {
            let triggers = config.docker.on_build.get_or_insert_with(Vec::new);
            triggers.push(o.expression.clone());
            return Ok(Applied::Silent);
        }
        Instruction::Maintainer(m) => {
            config.oci.set_author(Some(m.name.value.clone()));
            format!("MAINTAINER {}", m.name.value)
        }
        Instruction::Cmd(c) => {
            let args = command_args(config, c);
            state.cmd_set = true;
            config.docker.args_escaped = Some(true);
            let text = format!("CMD {}", go_quoted(&args));
            config.update_runtime(|r| {
                r.set_cmd(Some(args));
            });
            text
        }
        Instruction::Entrypoint(c) => {
            let args = command_args(config, c);
            let text = format!("ENTRYPOINT {}", go_quoted(&args));
            let reset_cmd = !state.cmd_set;
            config.update_runtime(|r| {
                r.set_entrypoint(Some(args));
                if reset_cmd {
                    r.set_cmd(None);
                }
            });
            text
        }
        Instruction::From(_)
        | Instruction::Run(_)
        | Instruction::Copy(_)
        | Instruction::Add(_)
        | Instruction::Workdir(_) => return Ok(Applied::NotMetadata),
    };
    Ok(Applied::History(text))
}

/// The stage's shell: SHELL if set, else `/bin/sh -c`.
pub(crate) fn shell(config: &ImageConfig) -> Vec<String> {
    config
        .docker
        .shell
        .clone()
        .unwrap_or_else(|| DEFAULT_SHELL.iter().map(|s| s.to_string()).collect())
}

/// The argv of a CMD/ENTRYPOINT/RUN: exec form as written, shell form through the shell.
pub(crate) fn command_args(config: &ImageConfig, c: &CommandLine) -> Vec<String> {
    let words = c.args.iter().map(|a| a.value.clone());
    match c.form {
        Form::Exec => words.collect(),
        Form::Shell => {
            let mut args = shell(config);
            args.push(
                c.args
                    .iter()
                    .map(|a| a.value.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
            );
            args
        }
    }
}

/// The runtime section, empty when absent.
pub(crate) fn runtime(config: &ImageConfig) -> Config {
    config.oci.config().clone().unwrap_or_default()
}

/// Sets `key=value` in an Env list, keeping the position of an existing key.
pub(crate) fn set_env(env: &mut Vec<String>, key: &str, value: &str) {
    let entry = format!("{key}={value}");
    let slot = env
        .iter_mut()
        .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key);
    match slot {
        Some(existing) => *existing = entry,
        None => env.push(entry),
    }
}

fn env(config: &mut ImageConfig, kv: &KeyValues) -> String {
    let mut text = String::from("ENV");
    config.update_runtime(|c| {
        let mut env = c.env().clone().unwrap_or_default();
        for p in &kv.pairs {
            set_env(&mut env, &p.key.value, &p.value.value);
            text.push_str(&format!(" {}={}", p.key.value, p.value.value));
        }
        c.set_env(Some(env));
    });
    text
}

fn label(config: &mut ImageConfig, kv: &KeyValues) -> String {
    let mut text = String::from("LABEL");
    config.update_runtime(|c| {
        let mut labels: HashMap<String, String> = c.labels().clone().unwrap_or_default();
        for p in &kv.pairs {
            labels.insert(p.key.value.clone(), p.value.value.clone());
            text.push_str(&format!(" {}={}", p.key.value, p.value.value));
        }
        c.set_labels(Some(labels));
    });
    text
}

/// EXPOSE: `port[/proto]`, tcp when no protocol is given; kept sorted and unique.
fn expose<'a>(config: &mut ImageConfig, ports: impl Iterator<Item = &'a str>) -> Result<String> {
    let mut added = Vec::new();
    for port in ports {
        let spec = match port.split_once('/') {
            Some((p, proto)) => format!("{p}/{}", proto.to_ascii_lowercase()),
            None => format!("{port}/tcp"),
        };
        if spec.starts_with('/') {
            return Err(BuildError::Invalid(format!("invalid port: {port:?}")));
        }
        added.push(spec);
    }
    let text = format!("EXPOSE map[{}]", {
        let mut shown: Vec<String> = added.iter().map(|p| format!("{p}:{{}}")).collect();
        shown.sort();
        shown.join(" ")
    });
    config.update_runtime(|c| {
        let mut all = c.exposed_ports().clone().unwrap_or_default();
        all.extend(added);
        all.sort();
        all.dedup();
        c.set_exposed_ports(Some(all));
    });
    Ok(text)
}

fn volume(config: &mut ImageConfig, paths: impl Iterator<Item = String>) -> String {
    let paths: Vec<String> = paths.collect();
    let text = format!("VOLUME [{}]", paths.join(" "));
    config.update_runtime(|c| {
        let mut all = c.volumes().clone().unwrap_or_default();
        all.extend(paths);
        all.sort();
        all.dedup();
        c.set_volumes(Some(all));
    });
    text
}

fn healthcheck(config: &mut ImageConfig, h: &Healthcheck) -> String {
    let test = match &h.test {
        HealthTest::None => vec!["NONE".to_string()],
        HealthTest::Cmd(c) => match c.form {
            Form::Exec => std::iter::once("CMD".to_string())
                .chain(c.args.iter().map(|a| a.value.clone()))
                .collect(),
            Form::Shell => vec![
                "CMD-SHELL".to_string(),
                c.args
                    .iter()
                    .map(|a| a.value.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
            ],
        },
    };
    let text = format!(
        "HEALTHCHECK &{{{} {} {} {} {} {}}}",
        go_quoted(&test),
        go_quoted_duration(h.interval),
        go_quoted_duration(h.timeout),
        go_quoted_duration(h.start_period),
        go_quoted_duration(h.start_interval),
        go_quoted_rune(h.retries),
    );
    let nanos =
        |d: Duration| (!d.is_zero()).then(|| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    config.docker.healthcheck = Some(HealthConfig {
        test: Some(test),
        interval: nanos(h.interval),
        timeout: nanos(h.timeout),
        start_period: nanos(h.start_period),
        start_interval: nanos(h.start_interval),
        retries: (h.retries > 0).then_some(i64::from(h.retries)),
    });
    text
}

/// A string list as Go's `%q` prints it (`["a" "b"]`), the form BuildKit's history uses.
fn go_quoted(args: &[String]) -> String {
    let quoted: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
    format!("[{}]", quoted.join(" "))
}

/// A duration as Go's `%q` prints a `time.Duration` (`"1m30s"`, `"500ms"`, `"0s"`).
fn go_quoted_duration(d: Duration) -> String {
    format!("\"{}\"", go_duration(d))
}

fn go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    let fraction = |value: u128, unit: u128| {
        let (whole, rest) = (value / unit, value % unit);
        if rest == 0 {
            whole.to_string()
        } else {
            let digits = unit.to_string().len() - 1;
            let rest = format!("{rest:0digits$}");
            format!("{whole}.{}", rest.trim_end_matches('0'))
        }
    };
    match nanos {
        0 => "0s".into(),
        n if n < 1_000 => format!("{n}ns"),
        n if n < 1_000_000 => format!("{}µs", fraction(n, 1_000)),
        n if n < 1_000_000_000 => format!("{}ms", fraction(n, 1_000_000)),
        n => {
            let secs = n / 1_000_000_000;
            let (h, m) = (secs / 3600, secs % 3600 / 60);
            let s = fraction(n % 60_000_000_000, 1_000_000_000);
            match (h, m) {
                (0, 0) => format!("{s}s"),
                (0, m) => format!("{m}m{s}s"),
                (h, m) => format!("{h}h{m}m{s}s"),
            }
        }
    }
}

/// An integer as Go's `%q` prints it: a quoted rune literal (`'\x04'`, `'A'`).
fn go_quoted_rune(n: u32) -> String {
    let named = match n {
        7 => Some("\\a"),
        8 => Some("\\b"),
        9 => Some("\\t"),
        10 => Some("\\n"),
        11 => Some("\\v"),
        12 => Some("\\f"),
        13 => Some("\\r"),
        39 => Some("\\'"),
        92 => Some("\\\\"),
        _ => None,
    };
    let body = match (named, char::from_u32(n)) {
        (Some(s), _) => s.to_string(),
        (None, Some(c)) if !c.is_control() => c.to_string(),
        (None, _) if n < 0x80 => format!("\\x{n:02x}"),
        (None, _) if n < 0x10000 => format!("\\u{n:04x}"),
        (None, _) => format!("\\U{n:08x}"),
    };
    format!("'{body}'")
}

/// The variables a stage on an image starts with: the image's ENV, then what its `ONBUILD ENV`
/// triggers set, since they run before the stage's own instructions are expanded.
pub(crate) fn onbuild_env(
    config: &ImageConfig,
    env: Vec<(String, String)>,
    build_args: &BTreeMap<String, String>,
) -> Result<Vec<(String, String)>> {
    const BASE: &str = "kiln-onbuild-base";
    let triggers: Vec<&String> = config
        .docker
        .on_build
        .iter()
        .flatten()
        .filter(|t| {
            t.split_whitespace()
                .next()
                .is_some_and(|k| k.eq_ignore_ascii_case("ENV"))
        })
        .collect();
    if triggers.is_empty() {
        return Ok(env);
    }
    let source = format!(
        "FROM {BASE}\n{}\n",
        triggers
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    let render = |e: kiln_dockerfile::Error| BuildError::Dockerfile(e.render("ONBUILD", &source));
    let ast = kiln_dockerfile::parser::parse(&source).map_err(render)?;
    let opts = StageOptions {
        image_env: BTreeMap::from([(BASE.to_string(), env)]),
        ..StageOptions::default()
    };
    let df = kiln_dockerfile::stages::stages(&ast, &source, build_args, &opts).map_err(render)?;
    Ok(df
        .stages
        .first()
        .map(|s| s.scope.env.clone())
        .unwrap_or_default())
}

/// WORKDIR: the new working directory, relative paths taken from the current one.
pub(crate) fn workdir(config: &ImageConfig, path: &str) -> String {
    let current = runtime(config).working_dir().clone().unwrap_or_default();
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{}/{path}", if current.is_empty() { "/" } else { &current })
    };
    clean_path(&joined)
}

/// Lexically cleans an absolute path (`//a/./b/../c` → `/a/c`).
pub(crate) fn clean_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_keeps_position_of_redefined_key() {
        let mut env = vec!["PATH=/bin".to_string(), "A=1".to_string()];
        set_env(&mut env, "PATH", "/usr/bin");
        set_env(&mut env, "B", "2");
        assert_eq!(env, ["PATH=/usr/bin", "A=1", "B=2"]);
    }

    #[test]
    fn workdir_resolves_relative_paths() {
        let mut config = ImageConfig::default();
        assert_eq!(workdir(&config, "src"), "/src");
        config.update_runtime(|c| {
            c.set_working_dir(Some("/app".into()));
        });
        assert_eq!(workdir(&config, "./x/../y/"), "/app/y");
        assert_eq!(workdir(&config, "/abs"), "/abs");
    }

    #[test]
    fn go_formats_durations_and_runes() {
        assert_eq!(go_duration(Duration::from_secs(30)), "30s");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(go_duration(Duration::ZERO), "0s");
        assert_eq!(go_quoted_rune(4), "'\\x04'");
        assert_eq!(go_quoted_rune(10), "'\\n'");
        assert_eq!(go_quoted_rune(65), "'A'");
    }

    #[test]
    fn onbuild_changes_config_without_history() {
        let df = "FROM scratch\nONBUILD RUN x\n";
        let ast = kiln_dockerfile::parser::parse(df).unwrap();
        let stages =
            kiln_dockerfile::stages::stages(&ast, df, &Default::default(), &Default::default())
                .unwrap();
        let mut config = ImageConfig::default();
        let instr = &stages.stages[0].instructions[0].command.instruction;
        let got = apply(&mut config, &mut MetaState::default(), instr).unwrap();
        assert_eq!(got, Applied::Silent);
        assert_eq!(config.docker.on_build, Some(vec!["RUN x".to_string()]));
    }

    #[test]
    fn go_quoting_matches_buildkit_history() {
        assert_eq!(
            go_quoted(&["/hello".into(), "a b".into()]),
            r#"["/hello" "a b"]"#
        );
    }
}
