//! `kiln build` as a user runs it: the example builds, only needed stages run, results reach
//! docker, errors are clear.

mod cli_store_util;

use std::path::{Path, PathBuf};
use std::process::Command as Std;

use assert_cmd::Command;
use predicates::prelude::*;

use cli_store_util::bases;

const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A fresh store with `lab/busybox:1` imported as the conformance cases expect.
fn store_with_busybox() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    import(root.path(), "busybox.tar", "lab/busybox:1", "sh");
    root
}

fn import(root: &Path, tarball: &str, name: &str, cmd: &str) {
    kiln(root)
        .arg("import")
        .arg(bases().join(tarball))
        .arg(name)
        .args([
            "--change",
            &format!("CMD [\"{cmd}\"]"),
            "--change",
            &format!("ENV {PATH_ENV}"),
        ])
        .assert()
        .success();
}

fn kiln(root: &Path) -> Command {
    let mut cmd = Command::cargo_bin("kiln").unwrap();
    cmd.arg("--root").arg(root);
    cmd
}

fn metadata(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn steps(meta: &serde_json::Value) -> Vec<String> {
    cli_store_util::metadata_steps(meta)
        .into_iter()
        .map(|(step, _)| step)
        .collect()
}

#[test]
fn example_builds_and_reports_what_ran() {
    let root = store_with_busybox();
    let out = tempfile::tempdir().unwrap();
    let meta_path = out.path().join("meta.json");
    let iid = out.path().join("iid");
    let assert = kiln(root.path())
        .args(["build", "-q", "-t", "hello:1", "--metadata-file"])
        .arg(&meta_path)
        .arg("--iidfile")
        .arg(&iid)
        .arg(repo().join("examples/hello"))
        .assert()
        .success();
    let printed = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    let id = std::fs::read_to_string(&iid).unwrap();
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(printed.trim(), id, "-q prints exactly the image ID");
    let meta = metadata(&meta_path);
    assert_eq!(meta["containerimage.config.digest"], id.as_str());
    let ran = steps(&meta);
    assert!(
        ran.iter()
            .any(|s| s.starts_with("builder RUN mkdir -p /out")),
        "{ran:?}"
    );
    assert!(
        ran.iter()
            .any(|s| s.starts_with("stage-1 COPY --from=builder")),
        "{ran:?}"
    );
    kiln(root.path())
        .args(["images", "-a", "--filter", "label=stage=builder", "-q"])
        .assert()
        .success()
        .stdout(predicate::str::is_empty().not());
}

#[test]
fn target_builds_only_the_stages_it_needs() {
    let root = store_with_busybox();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM lab/busybox:1 AS unused\nRUN echo unused > /u\n\
         FROM lab/busybox:1 AS base\nRUN echo base > /b\n\
         FROM base AS test\nRUN cat /b > /t\n\
         FROM base AS release\nRUN echo release > /r\n",
    )
    .unwrap();
    let meta_path = ctx.path().join("meta.json");
    kiln(root.path())
        .args(["build", "--target", "test", "--metadata-file"])
        .arg(&meta_path)
        .arg(ctx.path())
        .assert()
        .success();
    let ran = steps(&metadata(&meta_path));
    assert!(
        ran.iter()
            .all(|s| !s.starts_with("unused ") && !s.starts_with("release ")),
        "{ran:?}"
    );
    assert!(ran.contains(&"test RUN cat /b > /t".to_owned()), "{ran:?}");
}

#[test]
fn failing_run_reports_command_and_exit_code() {
    let root = store_with_busybox();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM lab/busybox:1\nRUN echo about to fail && exit 3\n",
    )
    .unwrap();
    kiln(root.path())
        .args(["build", "-t", "broken:1"])
        .arg(ctx.path())
        .assert()
        .failure()
        .stderr(predicate::str::contains("exit code: 3"))
        .stderr(predicate::str::contains("about to fail"));
    kiln(root.path())
        .args(["inspect", "broken:1"])
        .assert()
        .failure();
}

#[test]
fn missing_base_image_is_named() {
    let root = tempfile::tempdir().unwrap();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM lab/nothing:1\nRUN true\n",
    )
    .unwrap();
    kiln(root.path())
        .arg("build")
        .arg(ctx.path())
        .assert()
        .failure()
        .stderr(predicate::str::contains("lab/nothing:1"));
}

#[test]
fn context_tar_on_stdin() {
    let root = store_with_busybox();
    let tar = Std::new("tar")
        .arg("-C")
        .arg(repo().join("examples/hello"))
        .args(["-cf", "-", "."])
        .output()
        .unwrap();
    assert!(tar.status.success());
    kiln(root.path())
        .args(["build", "-q", "-t", "fromstdin:1", "-"])
        .write_stdin(tar.stdout)
        .assert()
        .success()
        .stdout(predicate::str::starts_with("sha256:"));
}

/// Runs `docker` and returns stdout, failing loudly when the daemon is not there.
fn docker(args: &[&str]) -> String {
    let out = Std::new("docker")
        .args(args)
        .output()
        .expect("docker client installed");
    assert!(
        out.status.success(),
        "docker {args:?} failed (is dockerd running? scripts/setup.sh starts it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn build_load_run(root: &Path, example: &str, tag: &str) -> String {
    let out = tempfile::tempdir().unwrap();
    let archive = out.path().join("image.tar");
    kiln(root)
        .args(["build", "-t", tag, "-o"])
        .arg(format!("type=docker,dest={}", archive.display()))
        .arg(repo().join(example))
        .assert()
        .success();
    docker(&["load", "-i", archive.to_str().unwrap()]);
    let printed = docker(&["run", "--rm", tag]);
    docker(&["rmi", tag]);
    printed
}

#[test]
fn docker_runs_the_kiln_built_example() {
    let root = store_with_busybox();
    let printed = build_load_run(root.path(), "examples/hello", "kiln-test-hello:e2e");
    assert_eq!(printed, "hello from a kiln-built image\n");
}

#[test]
fn seed_c_program_compiled_in_gcc_runs_from_scratch() {
    let root = tempfile::tempdir().unwrap();
    assert!(
        bases().join("gcc12.tar").is_file(),
        "gcc12.tar missing: run scripts/setup.sh"
    );
    import(root.path(), "gcc12.tar", "lab/gcc:12", "bash");
    let printed = build_load_run(root.path(), "examples/hello-c", "kiln-test-hello-c:e2e");
    assert_eq!(printed, "hello from a static C binary built by kiln\n");
}

/// The image's `Created`, as `kiln inspect` shows it.
fn created(root: &Path, image: &str) -> String {
    let out = kiln(root).args(["inspect", image]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    doc[0]["Created"].as_str().unwrap().to_owned()
}

#[test]
fn source_date_epoch_comes_from_the_environment_unless_a_build_arg_sets_it() {
    let root = store_with_busybox();
    let hello = repo().join("examples/hello");
    kiln(root.path())
        .env_remove("SOURCE_DATE_EPOCH")
        .args(["build", "-q", "-t", "epoch:default"])
        .arg(&hello)
        .assert()
        .success();
    assert_eq!(
        created(root.path(), "epoch:default"),
        "1970-01-01T00:00:00Z"
    );
    kiln(root.path())
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .args(["build", "-q", "-t", "epoch:env"])
        .arg(&hello)
        .assert()
        .success();
    assert_eq!(created(root.path(), "epoch:env"), "2023-11-14T22:13:20Z");
    kiln(root.path())
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .args(["build", "-q", "-t", "epoch:arg"])
        .args(["--build-arg", "SOURCE_DATE_EPOCH=1600000000"])
        .arg(&hello)
        .assert()
        .success();
    assert_eq!(created(root.path(), "epoch:arg"), "2020-09-13T12:26:40Z");
}
