//! The OCI runtime spec shared by both executors.

use std::collections::HashSet;
use std::path::Path;

use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxDeviceBuilder, LinuxDeviceCgroup,
    LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxNamespaceBuilder, LinuxNamespaceType,
    LinuxResourcesBuilder, Mount, MountBuilder, PosixRlimitBuilder, PosixRlimitType,
    ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder, get_default_maskedpaths,
    get_default_readonly_paths,
};

use crate::error::Result;
use crate::{DEFAULT_PATH, MountSpec, Network, RunSpec};

/// The capabilities BuildKit grants RUN (containerd's default set).
const CAPABILITIES: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// Device nodes every container gets in its private `/dev`: (name, major, minor).
const DEVICES: [(&str, i64, i64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// Files in `etc_dir` bind-mounted over the rootfs's, kept outside it so they never reach a layer.
pub(crate) const ETC_FILES: [&str; 3] = ["hosts", "resolv.conf", "hostname"];

/// Builds the OCI runtime spec for `run`, bind-mounting `hosts`, `resolv.conf` and `hostname`
/// from `etc_dir` over the rootfs's `/etc` read-only.
///
/// Namespaces: mount, pid, uts, ipc, plus network for [`Network::None`]. No cgroup limits: only
/// device rules (deny all but the standard nodes), which the runtime applies where it can.
/// `/sys` is a read-only sysfs in both network modes (kiln runs as real root, so sysfs mounts
/// even in the host network namespace).
pub fn build_spec(run: &RunSpec, etc_dir: &Path) -> Result<Spec> {
    let spec = SpecBuilder::default()
        .version("1.0.2")
        .hostname(run.hostname.clone())
        .root(
            RootBuilder::default()
                .path(run.rootfs.clone())
                .readonly(run.readonly_rootfs)
                .build()?,
        )
        .process(process(run)?)
        .mounts(mounts(run, etc_dir)?)
        .linux(
            LinuxBuilder::default()
                .namespaces(namespaces(run.network)?)
                .devices(devices()?)
                .resources(
                    LinuxResourcesBuilder::default()
                        .devices(device_rules()?)
                        .build()?,
                )
                .masked_paths(get_default_maskedpaths())
                .readonly_paths(get_default_readonly_paths())
                .build()?,
        )
        .build()?;
    Ok(spec)
}

fn process(run: &RunSpec) -> Result<oci_spec::runtime::Process> {
    let mut env = run.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, format!("PATH={DEFAULT_PATH}"));
    }
    let caps: HashSet<Capability> = CAPABILITIES.into_iter().collect();
    let nofile = PosixRlimitBuilder::default()
        .typ(PosixRlimitType::RlimitNofile)
        .soft(1024u64)
        .hard(1024u64)
        .build()?;
    let user = UserBuilder::default()
        .uid(run.user.uid)
        .gid(run.user.gid)
        .additional_gids(run.user.additional_gids.clone())
        .build()?;
    Ok(ProcessBuilder::default()
        .terminal(false)
        .args(run.args.clone())
        .env(env)
        .cwd(run.cwd.clone())
        .user(user)
        .capabilities(
            LinuxCapabilitiesBuilder::default()
                .bounding(caps.clone())
                .effective(caps.clone())
                .permitted(caps)
                .build()?,
        )
        .rlimits(vec![nofile])
        .no_new_privileges(false)
        .build()?)
}

fn namespaces(network: Network) -> Result<Vec<oci_spec::runtime::LinuxNamespace>> {
    let mut kinds = vec![
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Ipc,
    ];
    if network == Network::None {
        kinds.push(LinuxNamespaceType::Network);
    }
    Ok(kinds
        .into_iter()
        .map(|typ| LinuxNamespaceBuilder::default().typ(typ).build())
        .collect::<Result<_, _>>()?)
}

fn devices() -> Result<Vec<oci_spec::runtime::LinuxDevice>> {
    Ok(DEVICES
        .iter()
        .map(|(name, major, minor)| {
            LinuxDeviceBuilder::default()
                .path(format!("/dev/{name}"))
                .typ(LinuxDeviceType::C)
                .major(*major)
                .minor(*minor)
                .file_mode(0o666u32)
                .uid(0u32)
                .gid(0u32)
                .build()
        })
        .collect::<Result<_, _>>()?)
}

/// Device-cgroup rules: deny everything, then allow the standard nodes and ptys (containerd's).
fn device_rules() -> Result<Vec<LinuxDeviceCgroup>> {
    let rule = |allow: bool, major: Option<i64>, minor: Option<i64>| {
        let mut b = LinuxDeviceCgroupBuilder::default()
            .allow(allow)
            .access("rwm");
        if allow {
            b = b.typ(LinuxDeviceType::C);
        }
        if let Some(m) = major {
            b = b.major(m);
        }
        if let Some(m) = minor {
            b = b.minor(m);
        }
        b.build()
    };
    let mut rules = vec![rule(false, None, None)?];
    for (_, major, minor) in DEVICES {
        rules.push(rule(true, Some(major), Some(minor))?);
    }
    rules.push(rule(true, Some(5), Some(2))?); // /dev/ptmx
    rules.push(rule(true, Some(136), None)?); // /dev/pts/*
    Ok(rules)
}

fn mount(
    dest: &str,
    typ: &str,
    source: impl Into<std::path::PathBuf>,
    options: &[&str],
) -> Result<Mount> {
    Ok(MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source.into())
        .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
        .build()?)
}

fn mounts(run: &RunSpec, etc_dir: &Path) -> Result<Vec<Mount>> {
    let mut out = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        )?,
    ];
    for name in ETC_FILES {
        out.push(mount(
            &format!("/etc/{name}"),
            "bind",
            etc_dir.join(name),
            &["rbind", "ro", "nosuid", "nodev", "noexec"],
        )?);
    }
    for m in &run.mounts {
        out.push(match m {
            MountSpec::Bind {
                source,
                target,
                readonly,
            } => {
                let mode = if *readonly { "ro" } else { "rw" };
                mount(target, "bind", source.clone(), &["rbind", mode])?
            }
            MountSpec::Tmpfs { target } => {
                mount(target, "tmpfs", "tmpfs", &["nosuid", "nodev", "mode=1777"])?
            }
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_path_and_isolates_network_only_for_none() {
        let mut run = RunSpec::new("/rootfs", vec!["true".into()]);
        let spec = build_spec(&run, Path::new("/etc-files")).unwrap();
        let env = spec.process().as_ref().unwrap().env().clone().unwrap();
        assert_eq!(env, vec![format!("PATH={DEFAULT_PATH}")]);
        let has_netns = |s: &Spec| {
            s.linux()
                .as_ref()
                .unwrap()
                .namespaces()
                .as_ref()
                .unwrap()
                .iter()
                .any(|n| n.typ() == LinuxNamespaceType::Network)
        };
        assert!(!has_netns(&spec));
        run.network = Network::None;
        run.env = vec!["PATH=/x".into()];
        let spec = build_spec(&run, Path::new("/etc-files")).unwrap();
        assert!(has_netns(&spec));
        assert_eq!(
            spec.process().as_ref().unwrap().env().clone().unwrap(),
            vec!["PATH=/x".to_string()]
        );
        let hosts = spec
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.destination() == Path::new("/etc/hosts"))
            .unwrap();
        assert_eq!(
            hosts.source().as_deref(),
            Some(Path::new("/etc-files/hosts"))
        );
    }
}
