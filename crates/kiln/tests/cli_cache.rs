//! The step cache from the command line: `--metadata-file` says which steps were cached,
//! `--no-cache-filter`, `kiln builder du|prune`, and the Build Cache row of `system df`.

mod cli_store_util;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

const DOCKERFILE: &str = "FROM lab/busybox:1 AS builder\nLABEL stage=builder\n\
    COPY a.txt /a.txt\nRUN cat /a.txt > /out\n\
    FROM lab/busybox:1 AS app\nCOPY --from=builder /out /out\nRUN cat /out\n";

fn kiln(root: &Path) -> Command {
    let mut cmd = Command::cargo_bin("kiln").unwrap();
    cmd.arg("--root").arg(root);
    cmd
}

/// A store with `lab/busybox:1` and a context with [`DOCKERFILE`].
fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let bases = std::env::var("KILN_TEST_BASES").unwrap_or("/var/cache/kiln-test/bases".into());
    kiln(&root)
        .arg("import")
        .arg(Path::new(&bases).join("busybox.tar"))
        .arg("lab/busybox:1")
        .args([
            "--change",
            "CMD [\"sh\"]",
            "--change",
            &format!("ENV {PATH_ENV}"),
        ])
        .assert()
        .success();
    let ctx = dir.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), DOCKERFILE).unwrap();
    std::fs::write(ctx.join("a.txt"), "hello\n").unwrap();
    (dir, root, ctx)
}

/// Builds and returns the image ID and `(stage step, cached)` of every non-FROM step.
fn build(root: &Path, ctx: &Path, extra: &[&str]) -> (String, Vec<(String, bool)>) {
    let meta = ctx.parent().unwrap().join("meta.json");
    kiln(root)
        .args(["build", "-t", "cache:1", "--metadata-file"])
        .arg(&meta)
        .args(extra)
        .arg(ctx)
        .assert()
        .success();
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    let steps = cli_store_util::metadata_steps(&doc)
        .into_iter()
        .filter(|(name, _)| !name.contains(" FROM "))
        .collect();
    let id = doc["containerimage.config.digest"]
        .as_str()
        .unwrap()
        .to_owned();
    (id, steps)
}

fn cached_steps(steps: &[(String, bool)]) -> Vec<&str> {
    steps
        .iter()
        .filter(|(_, c)| *c)
        .map(|(n, _)| n.as_str())
        .collect()
}

#[test]
fn warm_rebuild_is_cached_and_filter_reruns_one_stage() {
    let (_dir, root, ctx) = setup();
    let (first, steps) = build(&root, &ctx, &[]);
    assert_eq!(steps.len(), 4);
    assert!(cached_steps(&steps).is_empty(), "{steps:?}");
    let (second, steps) = build(&root, &ctx, &[]);
    assert_eq!(cached_steps(&steps).len(), 4, "{steps:?}");
    assert_eq!(second, first, "same image ID");
    let (_, steps) = build(&root, &ctx, &["--no-cache-filter", "builder"]);
    assert_eq!(
        cached_steps(&steps),
        ["app COPY --from=builder /out /out", "app RUN cat /out"]
    );
}

#[test]
fn builder_du_and_prune_by_stage_label() {
    let (_dir, root, ctx) = setup();
    build(&root, &ctx, &[]);
    kiln(&root)
        .args(["builder", "du"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("RUN cat /a.txt > /out")
                .and(predicate::str::contains("Total:")),
        );
    kiln(&root)
        .args(["system", "df"])
        .assert()
        .success()
        .stdout(predicate::str::is_match(r"Build Cache\s+4\s").unwrap());
    let out = kiln(&root)
        // -a: the builder's RUN layer is byte-identical to the app's COPY of it, so an image
        // shares it and a plain prune would keep it.
        .args(["builder", "prune", "-af", "--filter", "label=stage=builder"])
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert_eq!(text.matches("\tbuilder\t").count(), 2, "{text}");
    assert!(!text.contains("\tapp\t"), "{text}");
    assert!(!text.contains("Total reclaimed space: 0B"), "{text}");
    kiln(&root)
        .args(["builder", "du"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("RUN cat /out").and(predicate::str::contains("/a.txt").not()),
        );
}

#[test]
fn prune_needs_force_without_a_terminal() {
    let (_dir, root, _) = setup();
    kiln(&root)
        .args(["builder", "prune"])
        .write_stdin("")
        .assert()
        .failure()
        .stderr(predicate::str::contains("--force"));
}
