//! The step cache: warm rebuilds reuse every step and give the same image; a change re-runs
//! exactly the steps that depend on it; `--no-cache`, `--no-cache-filter` and prune.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::{Event, Recorder, cases_dir, import_busybox, request, temp_store};
use kiln_build::{BuildRequest, BuildResult, StepOutcome};
use kiln_store::{CacheFilter, Store};

/// A copy of a conformance case's context, free to modify.
fn copy_case(name: &str, dest: &Path) -> PathBuf {
    let ctx = dest.join("context");
    copy_dir(&cases_dir().join(name).join("context"), &ctx);
    ctx
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// `(stage, step text)` of every step with `outcome`.
fn with_outcome(rec: &Recorder, outcome: &StepOutcome) -> BTreeSet<(String, String)> {
    let events = rec.events();
    events
        .iter()
        .filter_map(|e| match e {
            Event::Finished(id, o, _) if o == outcome => Some(*id),
            _ => None,
        })
        .filter_map(|id| {
            events.iter().find_map(|e| match e {
                Event::Started(s, _) if s.id == id => Some((s.stage.clone(), s.text.clone())),
                _ => None,
            })
        })
        .collect()
}

/// Steps that ran (FROM lines excluded: they only resolve the base).
fn ran(rec: &Recorder) -> BTreeSet<(String, String)> {
    with_outcome(rec, &StepOutcome::Done)
        .into_iter()
        .filter(|(_, text)| !text.starts_with("FROM"))
        .collect()
}

fn set(items: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    items
        .iter()
        .map(|(s, t)| (s.to_string(), t.to_string()))
        .collect()
}

fn build_ok(store: &Store, req: &BuildRequest) -> (BuildResult, Recorder) {
    let (result, rec) = common::build(store, req);
    (result.expect("build"), rec)
}

/// The node-like conformance case, built once cold.
fn warm_node_like(dir: &Path) -> (Store, BuildRequest, BuildResult) {
    let store = Store::open(dir.join("store")).unwrap();
    import_busybox(&store);
    let ctx = copy_case("node-like", dir);
    let req = request(&ctx, None, "kiln-test/cache:latest");
    let (first, rec) = build_ok(&store, &req);
    assert!(
        with_outcome(&rec, &StepOutcome::Cached)
            .iter()
            .all(|(_, t)| t.starts_with("FROM")),
        "a cold build has nothing cached"
    );
    (store, req, first)
}

#[test]
fn warm_rebuild_runs_nothing_and_gives_the_same_image() {
    let (tmp, _) = temp_store();
    let (store, req, first) = warm_node_like(tmp.path());
    let (second, rec) = build_ok(&store, &req);
    assert_eq!(ran(&rec), BTreeSet::new(), "no step may run");
    let runs = rec
        .steps()
        .into_iter()
        .filter(|s| s.text.starts_with("RUN"))
        .count();
    assert_eq!(runs, 2, "both RUN steps are reported, as CACHED");
    assert!(
        with_outcome(&rec, &StepOutcome::Cached).len() == rec.steps().len(),
        "every step is CACHED"
    );
    assert!(rec.output().is_empty(), "no container printed anything");
    assert_eq!(second.image.id, first.image.id);
    assert_eq!(second.image.manifest_digest, first.image.manifest_digest);
    let ids = |r: &BuildResult| {
        r.stages
            .iter()
            .map(|s| s.image.id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&second), ids(&first), "stage images are identical too");
    common::assert_clean(&store);
}

#[test]
fn changed_file_reruns_only_what_depends_on_it() {
    let (tmp, _) = temp_store();
    let (store, req, first) = warm_node_like(tmp.path());
    std::fs::write(
        req.context.join("src/routes.js"),
        "module.exports = ['/changed'];\n",
    )
    .unwrap();
    let (second, rec) = build_ok(&store, &req);
    let expected = set(&[
        ("build", "COPY src/ ./src/"),
        ("build", &rec_text(&rec, "build", "RUN")),
        ("production", "COPY --from=build /app/dist ./dist"),
        ("production", "COPY package.json ./"),
    ]);
    assert_eq!(ran(&rec), expected);
    assert_ne!(second.image.id, first.image.id);
}

/// The text of the step of `stage` starting with `prefix`.
fn rec_text(rec: &Recorder, stage: &str, prefix: &str) -> String {
    rec.steps()
        .into_iter()
        .find(|s| s.stage == stage && s.text.starts_with(prefix))
        .map(|s| s.text)
        .unwrap_or_else(|| panic!("no {prefix} step in {stage}"))
}

#[test]
fn same_size_change_with_restored_mtime_is_detected() {
    let (tmp, _) = temp_store();
    let (store, req, _) = warm_node_like(tmp.path());
    let file = req.context.join("package.json");
    let meta = std::fs::metadata(&file).unwrap();
    let mtime = filetime::FileTime::from_last_modification_time(&meta);
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes
        .iter()
        .rposition(|b| b.is_ascii_alphanumeric())
        .unwrap();
    bytes[last] = if bytes[last] == b'x' { b'y' } else { b'x' };
    std::fs::write(&file, &bytes).unwrap();
    filetime::set_file_mtime(&file, mtime).unwrap();
    assert_eq!(std::fs::metadata(&file).unwrap().len(), meta.len());
    let (_, rec) = build_ok(&store, &req);
    let ran = ran(&rec);
    assert!(
        ran.contains(&(
            "deps".into(),
            "COPY package.json package-lock.json ./".into()
        )),
        "{ran:?}"
    );
    assert!(ran.contains(&("production".into(), "COPY package.json ./".into())));
}

#[test]
fn no_cache_runs_everything_and_filter_only_the_named_stage() {
    let (tmp, _) = temp_store();
    let (store, mut req, first) = warm_node_like(tmp.path());
    req.no_cache = true;
    let (uncached, rec) = build_ok(&store, &req);
    assert_eq!(
        uncached.image.id, first.image.id,
        "steps that ran again make the same layers and config: builds are reproducible"
    );
    let all: BTreeSet<_> = rec
        .steps()
        .into_iter()
        .filter(|s| !s.text.starts_with("FROM"))
        .map(|s| (s.stage, s.text))
        .collect();
    assert_eq!(all.len(), 8);
    assert_eq!(ran(&rec), all, "--no-cache runs every step");

    req.no_cache = false;
    req.no_cache_filter = vec!["deps".into()];
    let (again, rec) = build_ok(&store, &req);
    let stages: BTreeSet<String> = ran(&rec).into_iter().map(|(s, _)| s).collect();
    assert_eq!(stages, BTreeSet::from(["deps".to_string()]));
    assert_eq!(ran(&rec).len(), 3, "WORKDIR, COPY and RUN of deps");
    assert_eq!(
        again.image.id, uncached.image.id,
        "production's steps stayed cached"
    );
}

#[test]
fn build_arg_invalidates_from_its_first_use() {
    let (tmp, store) = temp_store();
    import_busybox(&store);
    let ctx = tmp.path().join("context");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("a.txt"), "a\n").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM lab/busybox:1\nRUN echo before > /before\nARG V=1\nCOPY a.txt /a.txt\n\
         RUN echo $V > /v\nRUN echo after > /after\n",
    )
    .unwrap();
    let mut req = request(&ctx, None, "t/arg:1");
    build_ok(&store, &req);
    req.build_args.insert("V".into(), "2".into());
    let (_, rec) = build_ok(&store, &req);
    let texts: BTreeSet<String> = ran(&rec).into_iter().map(|(_, t)| t).collect();
    assert_eq!(
        texts,
        BTreeSet::from([
            "RUN echo $V > /v".to_string(),
            "RUN echo after > /after".into()
        ])
    );
}

#[test]
fn prune_by_stage_label_removes_only_those_records() {
    let (tmp, _) = temp_store();
    let (store, req, _) = warm_node_like(tmp.path());
    let before = store.cache_entries().unwrap();
    let filter = CacheFilter::parse(false, &["label=stage=builder"], None).unwrap();
    let report = store.prune_cache(&filter).unwrap();
    assert!(!report.removed.is_empty());
    assert!(
        report
            .removed
            .iter()
            .all(|r| r.labels.get("stage").map(String::as_str) == Some("builder")),
        "only stage=builder records go"
    );
    assert!(report.bytes_freed > 0, "their layers were freed");
    let after = store.cache_entries().unwrap();
    assert_eq!(after.len() + report.removed.len(), before.len());
    assert!(after.iter().all(|e| e.record.stage == "production"));
    let (_, rec) = build_ok(&store, &req);
    let stages: BTreeSet<String> = ran(&rec).into_iter().map(|(s, _)| s).collect();
    assert_eq!(
        stages,
        BTreeSet::from(["deps".to_string(), "build".into()]),
        "the pruned stages run again, production is still cached"
    );
}

#[test]
fn bind_mounts_from_the_context_key_on_their_files() {
    let (tmp, store) = temp_store();
    import_busybox(&store);
    let ctx = tmp.path().join("context");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("a.txt"), "a\n").unwrap();
    std::fs::write(ctx.join("b.txt"), "b\n").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM lab/busybox:1\n\
         RUN --mount=type=bind,source=a.txt,target=/a cat /a > /one\n\
         RUN --mount=type=bind,target=/ctx ls /ctx > /all\n",
    )
    .unwrap();
    let req = request(&ctx, None, "t/bind:1");
    build_ok(&store, &req);
    let (_, rec) = build_ok(&store, &req);
    assert_eq!(ran(&rec), BTreeSet::new(), "unchanged mounts: all cached");
    std::fs::write(ctx.join("b.txt"), "changed\n").unwrap();
    let (_, rec) = build_ok(&store, &req);
    let texts: BTreeSet<String> = ran(&rec).into_iter().map(|(_, t)| t).collect();
    assert_eq!(
        texts,
        BTreeSet::from(["RUN ls /ctx > /all".to_string()]),
        "only the RUN mounting b.txt (via the whole context) re-runs"
    );
}

#[test]
fn dockerignore_changes_what_copy_reads() {
    let (tmp, store) = temp_store();
    import_busybox(&store);
    let ctx = tmp.path().join("context");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("keep.txt"), "k\n").unwrap();
    std::fs::write(ctx.join("secret.txt"), "s\n").unwrap();
    std::fs::write(ctx.join(".dockerignore"), "secret.txt\n.dockerignore\n").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM lab/busybox:1\nCOPY keep.txt /keep\nCOPY . /ctx\n",
    )
    .unwrap();
    let req = request(&ctx, None, "t/ignore:1");
    build_ok(&store, &req);
    std::fs::write(ctx.join("secret.txt"), "ignored change\n").unwrap();
    let (_, rec) = build_ok(&store, &req);
    assert_eq!(ran(&rec), BTreeSet::new(), "an ignored file is not read");
    // The rules file ignores itself: only the newly visible secret.txt changes the copy.
    std::fs::write(ctx.join(".dockerignore"), ".dockerignore\n").unwrap();
    let (_, rec) = build_ok(&store, &req);
    assert_eq!(
        ran(&rec),
        set(&[("stage-0", "COPY . /ctx")]),
        "un-ignoring a file changes the copied set"
    );
}

#[test]
fn copy_from_a_stage_keys_on_the_copied_files_only() {
    let (tmp, store) = temp_store();
    import_busybox(&store);
    let ctx = tmp.path().join("context");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM lab/busybox:1 AS builder\nARG OUT=built\n\
         RUN mkdir -p /app/dist && echo $OUT > /app/dist/app.js\n\
         ARG NOTE=1\nRUN echo $NOTE > /app/notes.txt\n\
         FROM lab/busybox:1\nCOPY --from=builder /app/dist /srv/dist\n\
         RUN cat /srv/dist/app.js > /srv/seen\n",
    )
    .unwrap();
    let mut req = request(&ctx, None, "t/from:1");
    let (first, _) = build_ok(&store, &req);
    req.build_args.insert("NOTE".into(), "2".into());
    let (second, rec) = build_ok(&store, &req);
    assert_eq!(
        ran(&rec),
        set(&[("builder", "RUN echo $NOTE > /app/notes.txt")]),
        "/app/dist is unchanged: the final stage's COPY and RUN stay cached"
    );
    assert_eq!(second.image.id, first.image.id);
    assert_ne!(second.stages[0].image.id, first.stages[0].image.id);
    req.build_args.insert("OUT".into(), "rebuilt".into());
    let (third, rec) = build_ok(&store, &req);
    let ran = ran(&rec);
    assert!(
        ran.contains(&(
            "stage-1".into(),
            "COPY --from=builder /app/dist /srv/dist".into()
        )),
        "changed files are copied again: {ran:?}"
    );
    assert!(ran.contains(&(
        "stage-1".into(),
        "RUN cat /srv/dist/app.js > /srv/seen".into()
    )));
    assert_ne!(third.image.id, first.image.id);
}

/// Prunes the whole step cache (records and unreferenced blobs) the moment a layer step is
/// served from it, as a `kiln builder prune -af` racing the build would.
struct PruneOnHit {
    store: Store,
    /// The FROM steps (reported as cached when the base is at hand).
    from_steps: Vec<usize>,
    pruned: bool,
}

impl kiln_build::Progress for PruneOnHit {
    fn step_started(&mut self, step: &kiln_build::StepInfo) {
        if step.text.starts_with("FROM ") {
            self.from_steps.push(step.id);
        }
    }
    fn step_output(&mut self, _: usize, _: &[u8]) {}
    fn step_finished(&mut self, step: usize, outcome: &StepOutcome) {
        let layer_hit = *outcome == StepOutcome::Cached && !self.from_steps.contains(&step);
        if layer_hit && !self.pruned {
            let all = CacheFilter::parse::<&str>(true, &[], None).unwrap();
            let report = self.store.prune_cache(&all).unwrap();
            assert!(!report.removed.is_empty(), "the prune found no records");
            self.pruned = true;
        }
    }
    fn warning(&mut self, _: &str) {}
    fn summary(&mut self, _: &kiln_build::BuildSummary) {}
}

#[test]
fn a_prune_during_a_build_cannot_take_the_layers_it_reuses() {
    let (tmp, store) = temp_store();
    import_busybox(&store);
    let ctx = tmp.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM lab/busybox:1\nCOPY a.txt /a.txt\nRUN cat /a.txt > /b.txt\n",
    )
    .unwrap();
    std::fs::write(ctx.join("a.txt"), "kept\n").unwrap();
    let req = request(&ctx, None, "race:1");
    let (first, _) = common::build(&store, &req);
    first.unwrap();
    // Only the cache records refer to the layers now, and they are older than any lease.
    store.remove_image("race:1", true).unwrap();
    age(&store.root().join("content/blobs/sha256"));
    age(&store.layers_dir());
    let mut progress = PruneOnHit {
        store: store.clone(),
        from_steps: Vec::new(),
        pruned: false,
    };
    let mut second = req.clone();
    second
        .dockerfile
        .push_str("RUN cat /b.txt /a.txt > /c.txt\n");
    let result = kiln_build::build(&store, &second, &mut progress).expect("build after prune");
    assert!(progress.pruned, "no step was served from the cache");
    for layer in store.image_layers(&result.image.id).unwrap() {
        assert!(
            store.content().contains(&layer.digest),
            "layer {} of the new image was pruned",
            layer.digest
        );
    }
    assert!(
        store.check(false).unwrap().is_ok(),
        "store inconsistent after the race"
    );
}

/// Dates every entry of `dir` an hour back, so GC sees them as written before any lease.
fn age(dir: &Path) {
    let old = filetime::FileTime::from_unix_time(unix_now() - 3600, 0);
    for entry in std::fs::read_dir(dir).unwrap() {
        filetime::set_symlink_file_times(entry.unwrap().path(), old, old).unwrap();
    }
}

fn unix_now() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    i64::try_from(now.unwrap().as_secs()).unwrap()
}
