//! `kiln outline` and `kiln lint` as a user runs them.

use std::fs;

use assert_cmd::Command;
use predicates::prelude::*;

fn kiln() -> Command {
    Command::cargo_bin("kiln").expect("kiln binary")
}

fn context(dockerfile: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    dir
}

const MULTI: &str = "FROM lab/busybox:1 AS unused
RUN sleep 5
FROM lab/busybox:1 AS used
COPY input.txt /input.txt
FROM lab/busybox:1
COPY --from=used /input.txt /
";

#[test]
fn outline_json_lists_only_needed_stages() {
    let ctx = context(MULTI);
    let out = kiln()
        .args(["outline", "--format", "json"])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["target"], 2);
    assert_eq!(json["needed"], serde_json::json!([1, 2]));
    assert_eq!(json["stages"].as_array().unwrap().len(), 3);
    assert_eq!(json["stages"][2]["depends_on"], serde_json::json!([1]));
}

#[test]
fn outline_target_is_case_insensitive_and_unknown_target_fails() {
    let ctx = context(MULTI);
    kiln()
        .args(["outline", "--format", "json", "--target", "USED"])
        .arg(ctx.path())
        .assert()
        .success()
        .stdout(predicate::str::contains("\"target\": 1"));
    kiln()
        .args(["outline", "--target", "nope"])
        .arg(ctx.path())
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "target stage \"nope\" could not be found",
        ));
}

#[test]
fn outline_reads_dockerfile_from_stdin_and_points_at_errors() {
    kiln()
        .args(["outline", "-f", "-", "."])
        .write_stdin("FROM busybox\nRUN --bogus echo\n")
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "Dockerfile:2:5: unknown flag: --bogus",
        ))
        .stderr(predicate::str::contains("^^^^^^^"));
}

#[test]
fn outline_build_arg_changes_the_base() {
    let ctx = context("ARG BASE=lab/busybox:1\nFROM ${BASE}\n");
    kiln()
        .args(["outline", "--build-arg", "BASE=lab/debian:bookworm"])
        .arg(ctx.path())
        .assert()
        .success()
        .stdout(predicate::str::contains("FROM lab/debian:bookworm"));
}

#[test]
fn missing_dockerfile_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    kiln()
        .arg("outline")
        .arg(dir.path())
        .assert()
        .failure()
        .stderr(predicate::str::contains("failed to read Dockerfile"));
}

#[test]
fn lint_warns_and_check_error_true_fails() {
    let ctx = context("FROM busybox AS Build\nCMD echo hi\n");
    kiln()
        .arg("lint")
        .arg(ctx.path())
        .assert()
        .success()
        .stdout(predicate::str::contains("StageNameCasing"))
        .stdout(predicate::str::contains("JSONArgsRecommended"));
    let strict = context("# check=error=true\nFROM busybox AS Build\n");
    kiln()
        .arg("lint")
        .arg(strict.path())
        .assert()
        .failure()
        .stdout(predicate::str::contains("StageNameCasing"));
    let skipped = context("# check=skip=StageNameCasing;error=true\nFROM busybox AS Build\n");
    kiln().arg("lint").arg(skipped.path()).assert().success();
}

#[test]
fn lint_json_has_rule_names_and_locations() {
    let ctx = context("FROM busybox\nMAINTAINER me\n");
    let out = kiln()
        .args(["lint", "--format", "json"])
        .arg(ctx.path())
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let warning = &json["warnings"][0];
    assert_eq!(warning["ruleName"], "MaintainerDeprecated");
    assert_eq!(warning["location"]["ranges"][0]["start"]["line"], 2);
}
