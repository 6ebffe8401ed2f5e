//! Engine behaviour beyond the conformance images: errors, config and history rules, stored
//! stages, cleanup, import.

mod common;

use std::path::Path;

use common::{import_busybox, request, temp_store};
use kiln_build::BuildError;
use kiln_image::ImageConfig;
use kiln_store::Store;

fn write_context(dir: &Path, dockerfile: &str) -> std::path::PathBuf {
    let ctx = dir.join("context");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    ctx
}

fn config_of(store: &Store, record: &kiln_store::ImageRecord) -> ImageConfig {
    let bytes = store.content().read_bytes(&record.id, 1 << 20).unwrap();
    ImageConfig::from_slice(&bytes).unwrap()
}

fn created_by(config: &ImageConfig) -> Vec<String> {
    config
        .history()
        .iter()
        .map(|h| h.created_by().clone().unwrap_or_default())
        .collect()
}

#[test]
fn failing_run_reports_exit_code_and_output_tail() {
    let (tmp, store) = temp_store();
    import_busybox(&store);
    let ctx = write_context(
        tmp.path(),
        "FROM lab/busybox:1\nRUN echo line-one && echo line-two >&2 && exit 3\n",
    );
    let (result, rec) = common::build(&store, &request(&ctx, None, "t/fail:1"));
    let err = result.expect_err("the build must fail");
    match &err {
        BuildError::RunFailed {
            command,
            code,
            tail,
        } => {
            assert_eq!(*code, 3);
            assert!(command.starts_with("/bin/sh -c echo line-one"), "{command}");
            assert!(
                tail.contains("line-one") && tail.contains("line-two"),
                "{tail}"
            );
        }
        other => panic!("unexpected error: {other}"),
    }
    assert!(err.to_string().contains("exit code: 3"), "{err}");
    assert!(rec.output().contains("line-two"));
    let leftovers: Vec<_> = std::fs::read_dir(store.root().join("tmp"))
        .unwrap()
        .collect();
    assert!(leftovers.is_empty(), "temp dirs left behind: {leftovers:?}");
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let root = store.root().to_string_lossy().into_owned();
    assert!(!mounts.contains(&root), "mounts left behind under {root}");
}

#[test]
fn missing_base_image_is_named() {
    let (tmp, store) = temp_store();
    let ctx = write_context(tmp.path(), "FROM lab/x:1\nRUN true\n");
    let (result, rec) = common::build(&store, &request(&ctx, None, "t/x:1"));
    let err = result.expect_err("no such image");
    assert_eq!(
        err.to_string(),
        "lab/x:1: image not found in the store: import or load it first"
    );
    assert!(rec.steps().is_empty(), "nothing may run");
}

#[test]
fn missing_from_image_fails_before_any_step() {
    let (tmp, store) = temp_store();
    import_busybox(&store);
    let ctx = write_context(
        tmp.path(),
        "FROM lab/busybox:1\nRUN true\nCOPY --from=lab/tools:2 /x /x\n",
    );
    let (result, rec) = common::build(&store, &request(&ctx, None, "t/x:1"));
    let err = result.expect_err("no such image");
    assert!(
        matches!(&err, BuildError::ImageNotFound(n) if n == "lab/tools:2"),
        "{err}"
    );
    assert!(rec.steps().is_empty(), "nothing may run");
}

#[test]
fn config_and_history_follow_buildkit_rules() {
    let (tmp, store) = temp_store();
    import_busybox(&store);
    let ctx = write_context(
        tmp.path(),
        "FROM lab/busybox:1 AS base\nLABEL stage=base\nCMD [\"inherited\"]\n\
         FROM base\nENV A=1 PATH=/custom:/bin\nENTRYPOINT [\"/bin/echo\"]\nWORKDIR /tmp\n\
         COPY Dockerfile /df\nEXPOSE 80 53/udp\n",
    );
    let (result, _) = common::build(&store, &request(&ctx, None, "t/meta:1"));
    let result = result.unwrap();
    let config = config_of(&store, &result.image);
    let rt = config.oci.config().clone().unwrap();
    assert_eq!(rt.cmd(), &None, "ENTRYPOINT resets an inherited CMD");
    assert_eq!(
        rt.entrypoint().as_deref(),
        Some(&["/bin/echo".to_string()][..])
    );
    assert_eq!(
        rt.env().as_deref(),
        Some(&["PATH=/custom:/bin".to_string(), "A=1".to_string()][..]),
        "a redefined PATH keeps its place"
    );
    assert_eq!(rt.working_dir().as_deref(), Some("/tmp"));
    assert_eq!(
        config.labels().get("stage").map(String::as_str),
        Some("base"),
        "labels come down the FROM chain"
    );
    let history = created_by(&config);
    let last: Vec<&str> = history
        .iter()
        .skip(history.len().saturating_sub(5))
        .map(String::as_str)
        .collect();
    assert_eq!(
        last,
        [
            "ENV A=1 PATH=/custom:/bin",
            "ENTRYPOINT [\"/bin/echo\"]",
            "WORKDIR /tmp",
            "COPY Dockerfile /df # buildkit",
            "EXPOSE map[53/udp:{} 80/tcp:{}]",
        ]
    );
    // busybox layer, WORKDIR /tmp (exists already: still a layer), COPY.
    assert_eq!(result.image.tags.len(), 1);
    assert_eq!(config.oci.rootfs().diff_ids().len(), 3);
    let base = &result.stages[0];
    assert_eq!(base.name, "base");
    assert_eq!(base.image.intermediate.as_ref().unwrap().stage, "base");
    assert!(base.image.tags.is_empty());
}

#[test]
fn run_sees_args_env_user_and_workdir() {
    let (tmp, store) = temp_store();
    import_busybox(&store);
    let ctx = write_context(
        tmp.path(),
        "FROM lab/busybox:1\nARG V=from-arg\nENV E=from-env\nUSER app\nWORKDIR /home/app\n\
         RUN echo \"v=$V e=$E uid=$(id -u) gid=$(id -g) pwd=$(pwd)\"\n",
    );
    let (result, rec) = common::build(&store, &request(&ctx, None, "t/run:1"));
    let result = result.unwrap();
    let out = rec.output();
    assert!(
        out.contains("v=from-arg e=from-env uid=1000 gid=1000 pwd=/home/app"),
        "{out}"
    );
    let history = created_by(&config_of(&store, &result.image));
    assert_eq!(
        history.last().map(String::as_str),
        Some(
            "RUN |1 V=from-arg /bin/sh -c echo \"v=$V e=$E uid=$(id -u) gid=$(id -g) pwd=$(pwd)\" # buildkit"
        )
    );
}

#[test]
fn import_makes_a_one_layer_image_with_changes() {
    let (_tmp, store) = temp_store();
    import_busybox(&store);
    let record = store.resolve("lab/busybox:1").unwrap();
    let config = config_of(&store, &record);
    let rt = config.oci.config().clone().unwrap();
    assert_eq!(rt.cmd().as_deref(), Some(&["sh".to_string()][..]));
    assert_eq!(
        rt.env().as_deref(),
        Some(
            &["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string()][..]
        )
    );
    let tar = std::fs::read(Path::new(common::BASES).join("busybox.tar")).unwrap();
    let diff_ids = config.oci.rootfs().diff_ids();
    assert_eq!(diff_ids.len(), 1);
    assert_eq!(diff_ids[0], kiln_content::sha256_digest(&tar).to_string());
    assert_eq!(config.history().len(), 1);
}

#[test]
fn import_rejects_filesystem_changes() {
    let (_tmp, store) = temp_store();
    let err = kiln_build::import_rootfs(&store, &b""[..], None, &["RUN true".to_string()])
        .expect_err("RUN is not a change");
    assert!(
        err.to_string()
            .contains("RUN is not a valid change command"),
        "{err}"
    );
}

#[test]
fn jobs_limit_runs_independent_stages_one_at_a_time() {
    let (tmp, store) = temp_store();
    import_busybox(&store);
    let ctx = write_context(
        tmp.path(),
        "FROM lab/busybox:1 AS a\nRUN sleep 1\nFROM lab/busybox:1 AS b\nRUN sleep 1\n\
         FROM lab/busybox:1\nCOPY --from=a /etc/passwd /a\nCOPY --from=b /etc/passwd /b\n",
    );
    let mut req = request(&ctx, None, "t/jobs:1");
    req.jobs = 1;
    let (result, rec) = common::build(&store, &req);
    result.unwrap();
    let (a_start, a_end) = rec.span("a", "RUN");
    let (b_start, b_end) = rec.span("b", "RUN");
    assert!(
        a_end <= b_start || b_end <= a_start,
        "jobs=1 still overlapped"
    );
}

#[test]
fn run_mounts_bind_cache_and_tmpfs() {
    let (tmp, store) = temp_store();
    import_busybox(&store);
    let ctx = write_context(
        tmp.path(),
        "FROM lab/busybox:1 AS src\nRUN echo from-stage > /s.txt\n\
         FROM lab/busybox:1\n\
         RUN --mount=type=bind,source=Dockerfile,target=/ctx/df grep -c FROM /ctx/df\n\
         RUN --mount=type=bind,from=src,source=/s.txt,target=/m/s.txt cat /m/s.txt\n\
         RUN --mount=type=tmpfs,target=/scratch touch /scratch/x && ls /scratch\n\
         RUN --mount=type=cache,target=/c,id=kiln-test cat /c/n 2>/dev/null; echo build >> /c/n\n",
    );
    let mut req = request(&ctx, None, "t/mounts:1");
    let (first, rec) = common::build(&store, &req);
    let first = first.unwrap();
    let out = rec.output();
    assert!(
        out.contains("3\n") && out.contains("from-stage") && out.contains("x\n"),
        "{out}"
    );
    assert!(
        !out.contains("build"),
        "cache mount not empty on first use: {out}"
    );
    // The step cache would skip the RUN: make it run to see the mount's contents.
    req.no_cache = true;
    let (second, rec) = common::build(&store, &req);
    second.unwrap();
    assert!(
        rec.output().contains("build"),
        "cache mount not kept across builds"
    );
    let archive = tmp.path().join("mounts.tar");
    let image = kiln_export::ExportImage {
        manifest_digest: first.image.manifest_digest.clone(),
        tags: vec![],
    };
    let file = std::fs::File::create(&archive).unwrap();
    kiln_export::export_docker_archive(store.content(), &[image], file).unwrap();
    // No mount target or its contents may reach a layer: check every layer's entries.
    let names = layer_entries(&archive);
    assert!(
        names.iter().any(|n| n.contains("busybox")),
        "no layer listed: {names:?}"
    );
    for bad in ["ctx/", "m/", "scratch/", "c/"] {
        assert!(
            !names.iter().any(|n| n.starts_with(bad)),
            "{bad} leaked: {names:?}"
        );
    }
}

/// Entry names of every layer in a docker-archive.
fn layer_entries(archive: &Path) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("tar")
        .arg("-xf")
        .arg(archive)
        .arg("-C")
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let mut names = Vec::new();
    for entry in walk_files(&dir.path().join("blobs/sha256")) {
        let out = std::process::Command::new("tar")
            .arg("-tf")
            .arg(&entry)
            .output()
            .unwrap();
        // Config and manifest blobs are JSON, not tars.
        if out.status.success() {
            names.extend(
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .map(str::to_string),
            );
        }
    }
    names
}

fn walk_files(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect()
}

#[test]
fn onbuild_triggers_run_after_from_and_are_cleared() {
    let (tmp, store) = temp_store();
    let tar = std::fs::File::open(Path::new(common::BASES).join("busybox.tar")).unwrap();
    let changes = [
        "ENV PATH=/usr/bin:/bin".to_string(),
        "ONBUILD RUN echo triggered > /trig".to_string(),
    ];
    kiln_build::import_rootfs(&store, tar, Some("lab/onbuild:1"), &changes).unwrap();
    let ctx = write_context(tmp.path(), "FROM lab/onbuild:1\nRUN cat /trig\n");
    let mut req = request(&ctx, None, "t/onbuild:1");
    req.labels.insert("extra".into(), "yes".into());
    let (result, rec) = common::build(&store, &req);
    let result = result.unwrap();
    assert!(rec.output().contains("triggered"), "{}", rec.output());
    let labels: Vec<String> = rec
        .steps()
        .iter()
        .map(|s| format!("{} {}", s.label(), s.text))
        .collect();
    assert_eq!(
        labels,
        [
            "[stage-0 1/3] FROM lab/onbuild:1",
            "[stage-0 2/3] RUN echo triggered > /trig",
            "[stage-0 3/3] RUN cat /trig",
        ]
    );
    let config = config_of(&store, &result.image);
    assert_eq!(config.docker.on_build, None);
    assert_eq!(
        config.labels().get("extra").map(String::as_str),
        Some("yes")
    );
    assert_eq!(config.oci.rootfs().diff_ids().len(), 3);
}

#[test]
fn plain_progress_reads_like_buildkit() {
    let (tmp, store) = temp_store();
    import_busybox(&store);
    let ctx = write_context(
        tmp.path(),
        "FROM lab/busybox:1 AS builder\nRUN echo hi\nFROM scratch\nCOPY --from=builder /bin/sh /sh\n",
    );
    let mut plain = kiln_build::PlainProgress::new(Vec::new());
    let result = kiln_build::build(&store, &request(&ctx, None, "t/plain:1"), &mut plain).unwrap();
    let text = String::from_utf8(plain.into_inner()).unwrap();
    for expected in [
        "#1 [builder 1/2] FROM lab/busybox:1\n",
        "#2 [builder 2/2] RUN echo hi\n",
        "#2 DONE ",
        "[stage-1 2/2] COPY --from=builder /bin/sh /sh\n",
        "naming to docker.io/t/plain:1 done\n",
        "builder ",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    let hi = text
        .lines()
        .find(|l| l.ends_with(" hi"))
        .expect("RUN output line");
    assert!(hi.starts_with("#2 [builder 2/2] "), "{hi}");
    assert!(text.contains(&format!("writing image {} done", result.image.id)));
}

#[test]
fn run_heredocs_follow_buildkit() {
    let (tmp, store) = temp_store();
    import_busybox(&store);
    let ctx = write_context(
        tmp.path(),
        "FROM lab/busybox:1\n\
         RUN <<EOF\necho plain-heredoc\necho second-line\nEOF\n\
         RUN <<EOF\n#!/bin/sh\necho shebang-script $0\nEOF\n\
         RUN cat <<A > /a.txt\nfrom-a\nA\nRUN cat /a.txt\n",
    );
    let (result, rec) = common::build(&store, &request(&ctx, None, "t/heredoc:1"));
    result.unwrap();
    let out = rec.output();
    assert!(out.contains("plain-heredoc\nsecond-line"), "{out}");
    assert!(out.contains("shebang-script /dev/pipes/EOF"), "{out}");
    assert!(out.contains("from-a"), "{out}");
}

#[test]
fn copy_wildcards_heredoc_files_and_add_archives() {
    let (tmp, store) = temp_store();
    import_busybox(&store);
    let ctx = write_context(
        tmp.path(),
        "FROM lab/busybox:1 AS src\n\
         RUN mkdir /o && echo one > /o/a.txt && echo two > /o/b.txt && echo no > /o/c.log\n\
         FROM lab/busybox:1\nARG WHO=kiln\n\
         COPY --from=src /o/*.txt /txt/\n\
         COPY <<EOF /note.txt\nhello $WHO\nEOF\n\
         ADD arch.tar /unpacked/\n\
         RUN cat /txt/a.txt /txt/b.txt /note.txt /unpacked/inside.txt && ls /txt\n",
    );
    let payload = tmp.path().join("payload");
    std::fs::create_dir(&payload).unwrap();
    std::fs::write(payload.join("inside.txt"), "from-archive\n").unwrap();
    let status = std::process::Command::new("tar")
        .arg("-cf")
        .arg(ctx.join("arch.tar"))
        .arg("-C")
        .arg(&payload)
        .arg("inside.txt")
        .status()
        .unwrap();
    assert!(status.success());
    let (result, rec) = common::build(&store, &request(&ctx, None, "t/copy:1"));
    result.unwrap();
    let out = rec.output();
    assert!(
        out.contains("one\ntwo\nhello kiln\nfrom-archive\na.txt\nb.txt\n"),
        "{out}"
    );
    assert!(!out.contains("c.log"), "{out}");
}

#[test]
fn failure_in_a_parallel_stage_fails_the_build_and_cleans_up() {
    let (tmp, store) = temp_store();
    import_busybox(&store);
    let ctx = write_context(
        tmp.path(),
        "FROM lab/busybox:1 AS bad\nRUN exit 7\nFROM lab/busybox:1 AS slow\nRUN sleep 1\n\
         FROM lab/busybox:1\nCOPY --from=bad /etc/passwd /a\nCOPY --from=slow /etc/passwd /b\n",
    );
    let (result, rec) = common::build(&store, &request(&ctx, None, "t/bad:1"));
    match result.expect_err("must fail") {
        BuildError::RunFailed { code, .. } => assert_eq!(code, 7),
        other => panic!("unexpected error: {other}"),
    }
    let stages: Vec<String> = rec.steps().into_iter().map(|s| s.stage).collect();
    assert!(
        !stages.contains(&"stage-2".to_string()),
        "the dependent stage ran: {stages:?}"
    );
    common::assert_clean(&store);
}

#[test]
fn onbuild_env_triggers_reach_the_stage_instructions() {
    let (tmp, store) = temp_store();
    let tar = std::fs::File::open(Path::new(common::BASES).join("busybox.tar")).unwrap();
    let changes = [
        "ENV PATH=/usr/bin:/bin".to_string(),
        "ONBUILD ENV TRIG=from-trigger".to_string(),
        "ONBUILD ENV T2=${TRIG}-2".to_string(),
    ];
    kiln_build::import_rootfs(&store, tar, Some("lab/onbuild-env:1"), &changes).unwrap();
    let ctx = write_context(
        tmp.path(),
        "FROM lab/onbuild-env:1\nCOPY ${TRIG}.txt /copied\n\
         RUN test \"$TRIG $T2\" = \"from-trigger from-trigger-2\" && test -f /copied\n",
    );
    std::fs::write(ctx.join("from-trigger.txt"), "x\n").unwrap();
    let (result, _) = common::build(&store, &request(&ctx, None, "t/onbuild-env:1"));
    let result = result.unwrap_or_else(|e| panic!("{e}"));
    let config = config_of(&store, &result.image);
    let env = config.oci.config().clone().unwrap().env().clone().unwrap();
    assert!(env.contains(&"T2=from-trigger-2".to_string()), "{env:?}");
}
