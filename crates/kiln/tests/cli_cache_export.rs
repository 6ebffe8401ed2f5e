//! `kiln build --cache-to` / `--cache-from` with local directories: a cache exported from one
//! store makes a fresh store's rebuild fully cached (same image ID, nothing run), lazily;
//! `mode=min` vs `max`; `mounts=true` brings cache mounts along; broken caches are refused or
//! skipped, never used.

mod cli_store_util;

use std::path::{Path, PathBuf};

use cli_store_util::{Kiln, sha256_file};
use serde_json::Value;

const DOCKERFILE: &str = "FROM lab/busybox:1 AS builder\nLABEL stage=builder\n\
    COPY a.txt /a.txt\nRUN cat /a.txt > /out\n\
    FROM lab/busybox:1 AS app\nCOPY --from=builder /out /out\nRUN echo app > /app.txt\n";

/// A context directory holding `dockerfile` and `a.txt`.
fn context(dockerfile: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    std::fs::write(dir.path().join("a.txt"), "hello\n").unwrap();
    dir
}

/// Store A with `lab/busybox:1`, and store B with the same base image (saved and loaded, so
/// its manifest digest, the root of every key, is the same).
fn two_stores() -> (Kiln, Kiln) {
    let a = Kiln::new();
    a.import_busybox("lab/busybox:1");
    let tar = a.path().join("base.oci.tar");
    a.ok(["save", "--format", "oci", "-o", path(&tar), "lab/busybox:1"]);
    let b = Kiln::new();
    b.ok(["load", "-i", path(&tar)]);
    (a, b)
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// One build's result: image ID, `(stage step, cached)` of each non-FROM step, and stderr.
struct Built {
    id: String,
    steps: Vec<(String, bool)>,
    stderr: String,
}

impl Built {
    fn cached(&self) -> Vec<&str> {
        let pick = |c: bool| self.steps.iter().filter(move |s| s.1 == c);
        pick(true).map(|s| s.0.as_str()).collect()
    }

    fn ran(&self) -> Vec<&str> {
        self.steps
            .iter()
            .filter(|s| !s.1)
            .map(|s| s.0.as_str())
            .collect()
    }
}

fn build(k: &Kiln, ctx: &Path, extra: &[&str]) -> Built {
    build_with(k, ctx, extra, &[])
}

/// [`build`] with extra environment variables for kiln.
fn build_with(k: &Kiln, ctx: &Path, extra: &[&str], env: &[(&str, &str)]) -> Built {
    let meta = k.path().join("meta.json");
    let out = k
        .cmd([
            "build",
            "-t",
            "cache:1",
            "--progress",
            "plain",
            "--metadata-file",
        ])
        .arg(&meta)
        .args(extra)
        .arg(ctx)
        .envs(env.iter().copied())
        .output()
        .expect("running kiln");
    cli_store_util::assert_success(&out);
    let doc: Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    let steps = cli_store_util::metadata_steps(&doc)
        .into_iter()
        .filter(|(name, _)| !name.contains(" FROM "))
        .collect();
    Built {
        id: doc["containerimage.config.digest"]
            .as_str()
            .unwrap()
            .to_owned(),
        steps,
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// The cache in `dir`: its manifest and its config, read by hand from the layout.
fn read_cache(dir: &Path) -> (Value, Value) {
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let manifest = blob_json(dir, index["manifests"][0]["digest"].as_str().unwrap());
    let config = blob_json(dir, manifest["config"]["digest"].as_str().unwrap());
    (manifest, config)
}

fn blob_path(dir: &Path, digest: &str) -> PathBuf {
    dir.join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

fn blob_json(dir: &Path, digest: &str) -> Value {
    serde_json::from_slice(&std::fs::read(blob_path(dir, digest)).unwrap()).unwrap()
}

fn record_stages(config: &Value) -> Vec<String> {
    let mut stages: Vec<String> = config["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["stage"].as_str().unwrap().to_owned())
        .collect();
    stages.dedup();
    stages
}

/// The layer digest of the record whose instruction contains `text`.
fn layer_of(config: &Value, text: &str) -> String {
    config["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["instruction"].as_str().unwrap().contains(text))
        .unwrap_or_else(|| panic!("no record for {text:?} in {config}"))["layer"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn exported_cache_makes_a_fresh_store_rebuild_fully_cached() {
    let (a, b) = two_stores();
    let ctx = context(DOCKERFILE);
    let cache = a.path().join("cache");
    let first = build(
        &a,
        ctx.path(),
        &["--cache-to", &format!("type=local,dest={}", path(&cache))],
    );
    assert_eq!(first.ran().len(), 4, "{:?}", first.steps);
    let (manifest, config) = read_cache(&cache);
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.kiln.cache.config.v1+json"
    );
    assert_eq!(config["records"].as_array().unwrap().len(), 4, "{config}");
    // With runc as the runtime and no PATH to find it, any container start would fail the build.
    let from = format!("type=local,src={}", path(&cache));
    let no_runtime = [("PATH", "/nonexistent")];
    let second = build_with(
        &b,
        ctx.path(),
        &["--runtime", "runc", "--cache-from", &from],
        &no_runtime,
    );
    assert_eq!(
        second.cached().len(),
        4,
        "{:?}\n{}",
        second.steps,
        second.stderr
    );
    // A step that ran would have printed its DONE line; every step is CACHED instead.
    assert!(!second.stderr.contains(" DONE "), "{}", second.stderr);
    assert_eq!(second.id, first.id, "same image ID from the imported cache");
    // The records are now B's own: a rebuild without --cache-from is cached too.
    assert_eq!(build(&b, ctx.path(), &[]).cached().len(), 4);
}

#[test]
fn import_is_lazy_only_hit_layers_are_fetched() {
    let (a, b) = two_stores();
    let ctx = context(DOCKERFILE);
    let cache = a.path().join("cache");
    build(
        &a,
        ctx.path(),
        &["--cache-to", &format!("type=local,dest={}", path(&cache))],
    );
    let (_, config) = read_cache(&cache);
    let app_layer = layer_of(&config, "echo app");
    let builder_layer = layer_of(&config, "cat /a.txt");
    let from = format!("type=local,src={}", path(&cache));
    let built = build(
        &b,
        ctx.path(),
        &["--target", "builder", "--cache-from", &from],
    );
    assert_eq!(built.cached().len(), 2, "{:?}", built.steps);
    let store_blob = |d: &str| blob_path(&b.path().join("content"), d).exists();
    assert!(store_blob(&builder_layer), "the hit layer is in the store");
    assert!(
        !store_blob(&app_layer),
        "the app layer was not needed, so not fetched"
    );
    let du = b.ok(["builder", "du"]);
    assert!(
        !du.contains("echo app"),
        "only hit records are recorded:\n{du}"
    );
}

#[test]
fn mode_min_exports_only_the_target_chain() {
    let (a, b) = two_stores();
    let ctx = context(DOCKERFILE);
    let max = a.path().join("max");
    let min = a.path().join("min");
    build(
        &a,
        ctx.path(),
        &[
            "--cache-to",
            &format!("type=local,dest={}", path(&max)),
            "--cache-to",
            &format!("type=local,dest={},mode=min", path(&min)),
        ],
    );
    assert_eq!(record_stages(&read_cache(&max).1), ["builder", "app"]);
    assert_eq!(record_stages(&read_cache(&min).1), ["app"]);
    let built = build(
        &b,
        ctx.path(),
        &["--cache-from", &format!("type=local,src={}", path(&min))],
    );
    assert_eq!(
        built.ran(),
        ["builder COPY a.txt /a.txt", "builder RUN cat /a.txt > /out"],
        "mode=min drops the builder stage's records"
    );
    assert_eq!(built.cached().len(), 2, "{:?}", built.steps);
}

#[test]
fn export_updates_an_existing_dir_and_drops_blobs_only_the_old_cache_used() {
    let a = Kiln::new();
    a.import_busybox("lab/busybox:1");
    let ctx = context(DOCKERFILE);
    let cache = a.path().join("cache");
    let to = format!("type=local,dest={}", path(&cache));
    build(&a, ctx.path(), &["--cache-to", &to]);
    let old_app = layer_of(&read_cache(&cache).1, "echo app");
    let stranger = blob_path(&cache, &format!("sha256:{}", "ab".repeat(32)));
    std::fs::write(&stranger, "not ours").unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        DOCKERFILE.replace("echo app", "echo app2"),
    )
    .unwrap();
    build(&a, ctx.path(), &["--cache-to", &to]);
    let (manifest, config) = read_cache(&cache);
    assert!(!blob_path(&cache, &old_app).exists(), "stale layer removed");
    assert!(
        stranger.exists(),
        "blobs the old cache did not list are left alone"
    );
    for layer in manifest["layers"].as_array().unwrap() {
        let digest = layer["digest"].as_str().unwrap();
        assert_eq!(sha256_file(&blob_path(&cache, digest)), digest);
    }
    layer_of(&config, "echo app2");
    let leftovers: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(".index.json"))
        .collect();
    assert!(leftovers.is_empty(), "no temp files left: {leftovers:?}");
}

const MOUNT_FILL: &str = "FROM lab/busybox:1\n\
    RUN --mount=type=cache,target=/cache,id=pkg,mode=0750 echo fill > /cache/seed\n";
const MOUNT_READ: &str = "FROM lab/busybox:1\n\
    RUN --mount=type=cache,target=/cache,id=pkg cat /cache/seed > /got\n";

#[test]
fn mounts_true_round_trips_cache_mount_contents() {
    let (a, b) = two_stores();
    let cache = a.path().join("cache");
    let fill = context(MOUNT_FILL);
    build(
        &a,
        fill.path(),
        &[
            "--cache-to",
            &format!("type=local,dest={},mounts=true", path(&cache)),
        ],
    );
    let (_, config) = read_cache(&cache);
    assert_eq!(config["mounts"][0]["id"], "pkg", "{config}");
    let read = context(MOUNT_READ);
    let from = format!("type=local,src={}", path(&cache));
    // The RUN differs, so it runs: it reads the seed file only the restored mount has.
    let built = build(&b, read.path(), &["--cache-from", &from]);
    assert_eq!(built.ran().len(), 1, "{:?}", built.steps);
    let mount = b.path().join("cache-mounts").join(hex("pkg"));
    assert_eq!(
        std::fs::read_to_string(mount.join("seed")).unwrap(),
        "fill\n"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&mount).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o750, "the mount root keeps its mode");
}

#[test]
fn an_existing_cache_mount_is_not_overwritten_by_an_import() {
    let (a, b) = two_stores();
    let cache = a.path().join("cache");
    let fill = context(MOUNT_FILL);
    build(
        &a,
        fill.path(),
        &[
            "--cache-to",
            &format!("type=local,dest={},mounts=true", path(&cache)),
        ],
    );
    let mount = b.path().join("cache-mounts").join(hex("pkg"));
    std::fs::create_dir_all(&mount).unwrap();
    std::fs::write(mount.join("seed"), "mine\n").unwrap();
    let read = context(MOUNT_READ);
    build(
        &b,
        read.path(),
        &["--cache-from", &format!("type=local,src={}", path(&cache))],
    );
    assert_eq!(
        std::fs::read_to_string(mount.join("seed")).unwrap(),
        "mine\n"
    );
}

#[test]
fn without_mounts_true_no_mount_is_exported() {
    let a = Kiln::new();
    a.import_busybox("lab/busybox:1");
    let cache = a.path().join("cache");
    let fill = context(MOUNT_FILL);
    build(
        &a,
        fill.path(),
        &["--cache-to", &format!("type=local,dest={}", path(&cache))],
    );
    let (_, config) = read_cache(&cache);
    assert!(config["mounts"].as_array().unwrap().is_empty(), "{config}");
}

fn hex(id: &str) -> String {
    id.bytes().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_missing_cache_dir_is_a_warning_and_the_build_runs() {
    let (_, b) = two_stores();
    let ctx = context(DOCKERFILE);
    let missing = b.path().join("no-such-cache");
    let built = build(
        &b,
        ctx.path(),
        &[
            "--cache-from",
            &format!("type=local,src={}", path(&missing)),
        ],
    );
    assert_eq!(built.ran().len(), 4);
    assert!(
        built.stderr.contains("no cache there yet"),
        "{}",
        built.stderr
    );
}

/// Exports the cache of [`DOCKERFILE`] from A; B has the same base.
fn exported() -> (Kiln, Kiln, tempfile::TempDir, PathBuf) {
    let (a, b) = two_stores();
    let ctx = context(DOCKERFILE);
    let cache = a.path().join("cache");
    build(
        &a,
        ctx.path(),
        &["--cache-to", &format!("type=local,dest={}", path(&cache))],
    );
    (a, b, ctx, cache)
}

fn build_fails(k: &Kiln, ctx: &Path, cache: &Path) -> String {
    let from = format!("type=local,src={}", path(cache));
    let mut args = vec!["build", "--cache-from", &from];
    args.push(path(ctx));
    k.fails(args)
}

#[test]
fn a_corrupt_index_json_fails_clearly() {
    let (_a, b, ctx, cache) = exported();
    std::fs::write(cache.join("index.json"), "{not json").unwrap();
    let err = build_fails(&b, ctx.path(), &cache);
    assert!(
        err.contains("importing cache from type=local,src="),
        "{err}"
    );
    assert!(err.contains("index.json"), "{err}");
}

#[test]
fn an_image_layout_is_not_taken_for_a_cache() {
    let (a, b, ctx, cache) = exported();
    // A plain OCI image layout (what `kiln save --format oci` writes) in the cache's place.
    let tar = a.path().join("image.tar");
    a.ok(["save", "--format", "oci", "-o", path(&tar), "lab/busybox:1"]);
    std::fs::remove_dir_all(&cache).unwrap();
    std::fs::create_dir(&cache).unwrap();
    cli_store_util::run("tar", &["-xf", path(&tar), "-C", path(&cache)]);
    let err = build_fails(&b, ctx.path(), &cache);
    assert!(err.contains("not a kiln build cache"), "{err}");
}

#[test]
fn a_tampered_manifest_fails_its_digest_check() {
    let (_a, b, ctx, cache) = exported();
    let index: Value =
        serde_json::from_slice(&std::fs::read(cache.join("index.json")).unwrap()).unwrap();
    let manifest = blob_path(&cache, index["manifests"][0]["digest"].as_str().unwrap());
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::remove_file(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace("\"schemaVersion\":2", "\"schemaVersion\": 2"),
    )
    .unwrap();
    let err = build_fails(&b, ctx.path(), &cache);
    assert!(err.contains("digest mismatch"), "{err}");
}

#[test]
fn a_corrupt_layer_blob_is_a_warning_and_a_miss_never_a_wrong_layer() {
    let (a, b, ctx, cache) = exported();
    let (_, config) = read_cache(&cache);
    let layer = blob_path(&cache, &layer_of(&config, "cat /a.txt"));
    std::fs::remove_file(&layer).unwrap();
    std::fs::write(&layer, b"\x1f\x8b garbage").unwrap();
    let built = build(
        &b,
        ctx.path(),
        &["--cache-from", &format!("type=local,src={}", path(&cache))],
    );
    assert!(built.stderr.contains("digest mismatch"), "{}", built.stderr);
    assert!(
        built.stderr.contains("running the step"),
        "{}",
        built.stderr
    );
    assert!(
        built.ran().contains(&"builder RUN cat /a.txt > /out"),
        "{:?}",
        built.steps
    );
    // Nothing of the bad blob reached B's store.
    b.ok(["system", "check"]);
    drop(a);
}

/// A store with the same base as `like` (saved from it and loaded).
fn fresh_store_like(like: &Kiln) -> Kiln {
    let tar = like.path().join("base-again.oci.tar");
    like.ok(["save", "--format", "oci", "-o", path(&tar), "lab/busybox:1"]);
    let k = Kiln::new();
    k.ok(["load", "-i", path(&tar)]);
    k
}

#[test]
fn ci_runners_share_one_cache_dir_read_and_written_by_each_build() {
    let (a, b) = two_stores();
    let ctx = context(DOCKERFILE);
    let cache = tempfile::tempdir().unwrap();
    let flags = [
        "--cache-from".to_owned(),
        format!("type=local,src={}", path(cache.path())),
        "--cache-to".to_owned(),
        format!("type=local,dest={}", path(cache.path())),
    ];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    build(&a, ctx.path(), &flags);
    let dockerfile = DOCKERFILE.replace("echo app", "echo app2");
    std::fs::write(ctx.path().join("Dockerfile"), dockerfile).unwrap();
    let second = build(&b, ctx.path(), &flags);
    assert_eq!(
        second.ran(),
        ["app RUN echo app2 > /app.txt"],
        "only the changed step runs"
    );
    let c = fresh_store_like(&a);
    let third = build(&c, ctx.path(), &flags);
    assert_eq!(
        third.cached().len(),
        4,
        "{:?}\n{}",
        third.steps,
        third.stderr
    );
    assert_eq!(third.id, second.id);
}

#[test]
fn a_fully_cached_build_still_carries_its_cache_mounts_forward() {
    let (a, b) = two_stores();
    let first = a.path().join("first");
    let fill = context(MOUNT_FILL);
    let to = |dir: &Path| format!("type=local,dest={},mounts=true", path(dir));
    build(&a, fill.path(), &["--cache-to", &to(&first)]);
    let second = b.path().join("second");
    let from = format!("type=local,src={}", path(&first));
    let built = build(
        &b,
        fill.path(),
        &["--cache-from", &from, "--cache-to", &to(&second)],
    );
    assert_eq!(built.cached().len(), 1, "{:?}", built.steps);
    let (_, config) = read_cache(&second);
    assert_eq!(config["mounts"][0]["id"], "pkg", "{config}");
    let mount = b.path().join("cache-mounts").join(hex("pkg"));
    assert_eq!(
        std::fs::read_to_string(mount.join("seed")).unwrap(),
        "fill\n"
    );
}

/// Stores `bytes` as a blob of the layout `dir`; returns its digest and size.
fn put_blob(dir: &Path, bytes: &[u8]) -> (String, usize) {
    let tmp = dir.join("blob.tmp");
    std::fs::write(&tmp, bytes).unwrap();
    let digest = sha256_file(&tmp);
    std::fs::rename(&tmp, blob_path(dir, &digest)).unwrap();
    (digest, bytes.len())
}

#[test]
fn a_record_claiming_another_layers_diff_id_is_a_miss() {
    let (_a, b, ctx, cache) = exported();
    let mut index: Value =
        serde_json::from_slice(&std::fs::read(cache.join("index.json")).unwrap()).unwrap();
    let (mut manifest, mut config) = read_cache(&cache);
    let records = config["records"].as_array_mut().unwrap();
    let copy_diff = records
        .iter()
        .find(|r| r["instruction"] == "COPY a.txt /a.txt")
        .unwrap()["diffID"]
        .clone();
    let run = records
        .iter_mut()
        .find(|r| r["instruction"] == "RUN cat /a.txt > /out")
        .unwrap();
    run["diffID"] = copy_diff;
    let (digest, size) = put_blob(&cache, &serde_json::to_vec(&config).unwrap());
    manifest["config"]["digest"] = digest.into();
    manifest["config"]["size"] = size.into();
    let (digest, size) = put_blob(&cache, &serde_json::to_vec(&manifest).unwrap());
    index["manifests"][0]["digest"] = digest.into();
    index["manifests"][0]["size"] = size.into();
    std::fs::write(
        cache.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();

    let from = format!("type=local,src={}", path(&cache));
    let built = build(
        &b,
        ctx.path(),
        &["--target", "builder", "--cache-from", &from],
    );
    assert_eq!(
        built.cached(),
        ["builder COPY a.txt /a.txt"],
        "{}",
        built.stderr
    );
    assert!(built.stderr.contains("the record says"), "{}", built.stderr);
}

#[test]
fn mode_min_keeps_the_stages_the_target_is_built_from() {
    let a = Kiln::new();
    a.import_busybox("lab/busybox:1");
    let ctx = context(
        "FROM lab/busybox:1 AS tool\nRUN echo t > /t\n\
         FROM lab/busybox:1 AS base\nRUN echo b > /b\n\
         FROM base AS app\nCOPY --from=tool /t /t\n",
    );
    let (max, min) = (a.path().join("max"), a.path().join("min"));
    build(
        &a,
        ctx.path(),
        &[
            "--cache-to",
            &format!("type=local,dest={}", path(&max)),
            "--cache-to",
            &format!("type=local,dest={},mode=min", path(&min)),
        ],
    );
    assert_eq!(record_stages(&read_cache(&max).1), ["tool", "base", "app"]);
    assert_eq!(record_stages(&read_cache(&min).1), ["base", "app"]);
}
