//! Builds every conformance case and compares the image with the one BuildKit made
//! (`snapshot.py --diff`): same files, config and layer count.

mod common;

use common::{
    assert_matches_expected, case_env, cases_dir, import_base, import_busybox, request, temp_store,
};

/// Builds `name` on the busybox base (plus gcc when `gcc`) and checks it against BuildKit's.
fn conformance(name: &str, gcc: bool) -> common::Recorder {
    let case = cases_dir().join(name);
    let (tmp, store) = temp_store();
    import_busybox(&store);
    if gcc {
        import_base(&store, "gcc12.tar", "lab/gcc:12", "bash");
    }
    let env = case_env(&case);
    let req = request(
        &case.join("context"),
        env.get("TARGET").map(String::as_str),
        &format!("kiln-test/{name}:latest"),
    );
    let (result, recorder) = common::build(&store, &req);
    let result = result.unwrap_or_else(|e| panic!("{name}: build failed: {e}"));
    common::assert_clean(&store);
    assert_matches_expected(&store, &result, &case, tmp.path());
    recorder
}

#[test]
fn metadata() {
    conformance("metadata", false);
}

#[test]
fn node_like() {
    conformance("node-like", false);
}

#[test]
fn parallel() {
    let rec = conformance("parallel", false);
    let (left_start, left_end) = rec.span("left", "RUN");
    let (right_start, right_end) = rec.span("right", "RUN");
    assert!(
        left_start < right_end && right_start < left_end,
        "the independent stages ran one after the other"
    );
}

#[test]
fn target_middle() {
    let rec = conformance("target-middle", false);
    let stages: Vec<String> = rec.steps().into_iter().map(|s| s.stage).collect();
    assert!(
        !stages.contains(&"release".to_string()),
        "ran an unneeded stage: {stages:?}"
    );
    assert!(stages.contains(&"test".to_string()));
}

#[test]
fn unused_stage() {
    let rec = conformance("unused-stage", false);
    let steps = rec.steps();
    assert!(
        steps.iter().all(|s| s.stage != "unused"),
        "the unused stage ran: {steps:?}"
    );
    let runs = steps.iter().filter(|s| s.text.starts_with("RUN")).count();
    assert_eq!(runs, 1, "exactly the used stage's RUN runs");
}

#[test]
fn whiteout_opaque() {
    conformance("whiteout-opaque", false);
}

#[test]
fn cache_mount() {
    conformance("cache-mount", false);
}

#[test]
fn c_static_scratch() {
    conformance("c-static-scratch", true);
}
