//! Hostile base images and contexts through the `kiln` command: a rootfs tarball with `../` or
//! link-hopping entries made into an image by `kiln import` (and carried by `kiln save` /
//! `kiln load`), and a context link to a host file. `kiln build` fails with a clear message or
//! keeps everything in the rootfs, and the host canary the links aim at stays unchanged.

mod cli_store_util;

use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;
use tar::{EntryType, Header};

use cli_store_util::bases;

const SECRET: &str = "canary secret: kiln read the host\n";
/// Enough `..` to climb from any rootfs to the host's `/`.
const CLIMB: &str = "../../../../../../../../../../../../../../../..";

fn kiln(root: &Path) -> Command {
    let mut cmd = Command::cargo_bin("kiln").unwrap();
    cmd.arg("--root").arg(root);
    cmd
}

/// A host directory with a victim file, and its listing when made.
fn canary() -> (tempfile::TempDir, Vec<String>) {
    let dir = tempfile::Builder::new()
        .prefix("kiln-canary-")
        .tempdir_in("/var/tmp")
        .unwrap();
    fs::write(dir.path().join("victim"), SECRET).unwrap();
    let before = listing(dir.path());
    (dir, before)
}

/// Names, modes, link counts and contents below `dir`.
fn listing(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            let content = if m.is_file() {
                fs::read_to_string(&p).unwrap()
            } else {
                String::new()
            };
            format!("{} {:o} n{} {content:?}", p.display(), m.mode(), m.nlink())
        })
        .collect();
    out.sort();
    out
}

/// busybox.tar with `extra` (name, type, link) entries appended verbatim.
fn hostile_rootfs(path: &Path, extra: &[(&str, EntryType, &str)]) {
    let mut b = tar::Builder::new(Vec::new());
    let mut base = tar::Archive::new(fs::File::open(bases().join("busybox.tar")).unwrap());
    for entry in base.entries().unwrap() {
        let mut entry = entry.unwrap();
        let header = entry.header().clone();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        b.append(&header, &data[..]).unwrap();
    }
    for (name, kind, link) in extra {
        let mut h = Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(*kind);
        h.set_mode(if *kind == EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        let data = if *kind == EntryType::Regular {
            &b"written\n"[..]
        } else {
            &b""[..]
        };
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    fs::write(path, b.into_inner().unwrap()).unwrap();
}

fn import(root: &Path, tarball: &Path, name: &str) {
    kiln(root)
        .arg("import")
        .arg(tarball)
        .arg(name)
        .args([
            "--change",
            "CMD [\"sh\"]",
            "--change",
            "ENV PATH=/usr/bin:/bin",
        ])
        .assert()
        .success();
}

fn context(dockerfile: &str) -> tempfile::TempDir {
    let ctx = tempfile::tempdir().unwrap();
    fs::write(ctx.path().join("Dockerfile"), dockerfile).unwrap();
    ctx
}

#[test]
fn imported_base_with_dotdot_entries_fails_the_build() {
    let (canary, before) = canary();
    let root = tempfile::tempdir().unwrap();
    let tarball = root.path().join("evil.tar");
    let name = format!("{CLIMB}{}/dotdot", canary.path().display());
    hostile_rootfs(&tarball, &[(&name, EntryType::Regular, "")]);
    import(root.path(), &tarball, "evil/dotdot:1");
    let ctx = context("FROM evil/dotdot:1\nRUN true\n");
    kiln(root.path())
        .args(["build", "-t", "t:1"])
        .arg(ctx.path())
        .assert()
        .failure()
        .stderr(predicate::str::contains("climbs out of the layer root"));
    assert_eq!(listing(canary.path()), before, "the host canary changed");
}

#[test]
fn loaded_base_writing_through_links_stays_in_the_rootfs() {
    let (canary, before) = canary();
    let c = canary.path().display().to_string();
    let first = tempfile::tempdir().unwrap();
    let tarball = first.path().join("evil.tar");
    let climbing = format!("{CLIMB}{c}");
    // The links' target exists in the rootfs (a dangling parent fails the unpack instead).
    let inner = format!("{}/", c.trim_start_matches('/'));
    hostile_rootfs(
        &tarball,
        &[
            (&inner, EntryType::Directory, ""),
            ("esc", EntryType::Symlink, &c),
            ("esc/victim", EntryType::Regular, ""),
            ("up", EntryType::Symlink, &climbing),
            ("up/climbed", EntryType::Regular, ""),
        ],
    );
    import(first.path(), &tarball, "evil/links:1");
    // Through a docker-archive into a second store, as `docker save | kiln load` would bring it.
    let archive = first.path().join("evil-image.tar");
    kiln(first.path())
        .args(["save", "-o"])
        .arg(&archive)
        .arg("evil/links:1")
        .assert()
        .success();
    let second = tempfile::tempdir().unwrap();
    kiln(second.path())
        .args(["load", "-i"])
        .arg(&archive)
        .assert()
        .success();
    let ctx = context(&format!(
        "FROM evil/links:1\nRUN test -L /esc && test \"$(cat {c}/victim {c}/climbed)\" = \"$(printf 'written\\nwritten')\"\n"
    ));
    kiln(second.path())
        .args(["build", "-t", "t:1"])
        .arg(ctx.path())
        .assert()
        .success();
    assert_eq!(listing(canary.path()), before, "the host canary changed");
}

#[test]
fn context_link_to_a_host_file_is_not_found() {
    let (canary, before) = canary();
    let root = tempfile::tempdir().unwrap();
    import(root.path(), &bases().join("busybox.tar"), "lab/busybox:1");
    let ctx = context("FROM lab/busybox:1\nCOPY leak /leak\n");
    symlink(canary.path().join("victim"), ctx.path().join("leak")).unwrap();
    kiln(root.path())
        .args(["build", "-t", "t:1"])
        .arg(ctx.path())
        .assert()
        .failure()
        .stderr(predicate::str::contains("\"/leak\": not found"));
    assert_eq!(listing(canary.path()), before, "the host canary changed");
}
