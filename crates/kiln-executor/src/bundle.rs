//! The per-run OCI bundle (config.json and the `/etc` files) and mountpoint-stub cleanup.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::sys::stat::{UtimensatFlags, utimensat};
use nix::sys::time::TimeSpec;
use tempfile::TempDir;

use crate::error::{IoContext, Result};
use crate::rootpath::resolve_in_root;
use crate::spec::{ETC_FILES, build_spec};
use crate::{Network, RunSpec};

/// Nameservers used when the host has none the container can reach (docker's fallback).
const FALLBACK_DNS: &str = "nameserver 8.8.8.8\nnameserver 8.8.4.4\n";

/// A bundle directory outside the rootfs; removes its mountpoint stubs when finished or dropped.
pub(crate) struct Bundle {
    dir: TempDir,
    stubs: Vec<Stub>,
}

impl Bundle {
    /// Writes the bundle for `run` under `state_dir` and notes which mountpoints are missing.
    pub(crate) fn create(run: &RunSpec, state_dir: &Path) -> Result<Self> {
        fs::create_dir_all(state_dir).at("creating", state_dir)?;
        let dir = tempfile::Builder::new()
            .prefix("run-")
            .tempdir_in(state_dir)
            .at("creating bundle in", state_dir)?;
        let etc = dir.path().join("etc");
        fs::create_dir(&etc).at("creating", &etc)?;
        write_etc_files(run, &etc)?;
        let mut run = run.clone();
        run.rootfs = std::path::absolute(&run.rootfs).at("resolving", &run.rootfs)?;
        let spec = build_spec(&run, &etc)?;
        spec.save(dir.path().join("config.json"))?;
        let mut stubs = Vec::new();
        for target in stub_targets(&spec) {
            stubs.extend(Stub::find(&run.rootfs, &target)?);
        }
        Ok(Self { dir, stubs })
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A container id unique among concurrent runs (the bundle's random name).
    pub(crate) fn container_id(&self) -> String {
        let name = self
            .dir
            .path()
            .file_name()
            .unwrap_or_default()
            .to_string_lossy();
        format!("kiln-{}", name.trim_start_matches("run-"))
    }

    /// Removes the mountpoints the runtime created in the rootfs, then the bundle.
    pub(crate) fn finish(mut self) -> Result<()> {
        for stub in std::mem::take(&mut self.stubs).iter().rev() {
            stub.remove()?;
        }
        Ok(())
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        for stub in self.stubs.iter().rev() {
            if let Err(e) = stub.remove() {
                tracing::warn!("removing mountpoint stub: {e}");
            }
        }
    }
}

fn write_etc_files(run: &RunSpec, etc: &Path) -> Result<()> {
    let mut hosts = format!(
        "127.0.0.1\tlocalhost {}\n::1\tlocalhost ip6-localhost ip6-loopback\n",
        run.hostname
    );
    for (name, addr) in &run.extra_hosts {
        hosts.push_str(&format!("{addr}\t{name}\n"));
    }
    let contents = [
        hosts,
        resolv_conf(run.network),
        format!("{}\n", run.hostname),
    ];
    for (name, text) in ETC_FILES.iter().zip(contents) {
        let path = etc.join(name);
        fs::write(&path, text).at("writing", &path)?;
    }
    Ok(())
}

/// The host's resolv.conf, minus loopback nameservers unless the step shares the host network.
fn resolv_conf(network: Network) -> String {
    let host = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let keep = |line: &&str| {
        let server = line.strip_prefix("nameserver").map(str::trim);
        network == Network::Host || !server.is_some_and(|s| s.starts_with("127.") || s == "::1")
    };
    let mut out: String = host
        .lines()
        .filter(keep)
        .map(|l| format!("{l}\n"))
        .collect();
    if !out.lines().any(|l| l.starts_with("nameserver")) {
        out.push_str(FALLBACK_DNS);
    }
    out
}

/// Mount destinations that land in the rootfs itself (not inside another mount).
fn stub_targets(spec: &oci_spec::runtime::Spec) -> Vec<String> {
    let dests: Vec<String> = spec
        .mounts()
        .iter()
        .flatten()
        .map(|m| m.destination().to_string_lossy().into_owned())
        .collect();
    dests
        .iter()
        .filter(|d| {
            !dests.iter().any(|other| {
                other != *d && d.starts_with(&format!("{}/", other.trim_end_matches('/')))
            })
        })
        .cloned()
        .collect()
}

/// A mountpoint missing from the rootfs, which the runtime will create.
struct Stub {
    /// The first missing component and everything below it, top first.
    created: Vec<PathBuf>,
    /// The existing parent and its times before the run.
    parent: PathBuf,
    atime: TimeSpec,
    mtime: TimeSpec,
}

impl Stub {
    /// Finds where `target` stops existing inside `rootfs`, or `None` when it exists.
    fn find(rootfs: &Path, target: &str) -> Result<Option<Self>> {
        let resolved = resolve_in_root(rootfs, target)?;
        let parts: Vec<_> = resolved
            .strip_prefix(rootfs)
            .unwrap_or(Path::new(""))
            .components()
            .collect();
        let mut parent = rootfs.to_path_buf();
        for (i, part) in parts.iter().enumerate() {
            let path = parent.join(part);
            if path.symlink_metadata().is_ok() {
                parent = path;
                continue;
            }
            let meta = fs::symlink_metadata(&parent).at("inspecting", &parent)?;
            let created = parts[i..]
                .iter()
                .scan(parent.clone(), |p, part| {
                    p.push(part);
                    Some(p.clone())
                })
                .collect();
            let atime = TimeSpec::new(meta.atime(), meta.atime_nsec());
            let mtime = TimeSpec::new(meta.mtime(), meta.mtime_nsec());
            return Ok(Some(Self {
                created,
                parent,
                atime,
                mtime,
            }));
        }
        Ok(None)
    }

    /// Removes what the runtime created if it is still an empty stub, restoring the parent's times.
    fn remove(&self) -> Result<()> {
        for path in self.created.iter().rev() {
            let Ok(meta) = fs::symlink_metadata(path) else {
                continue;
            };
            let removed = if meta.is_dir() {
                fs::remove_dir(path).is_ok()
            } else {
                meta.is_file() && meta.len() == 0 && fs::remove_file(path).is_ok()
            };
            if !removed {
                return Ok(());
            }
        }
        utimensat(
            None,
            &self.parent,
            &self.atime,
            &self.mtime,
            UtimensatFlags::NoFollowSymlink,
        )
        .at("restoring times of", &self.parent)
    }
}
