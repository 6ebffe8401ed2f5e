//! Reproducible builds: the same inputs give the same image digest on fresh stores, at any
//! time; `SOURCE_DATE_EPOCH` sets every mtime bound and `created`; base layers stay as imported.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{import_busybox, request, temp_store};
use kiln_build::{BuildRequest, BuildResult, SOURCE_DATE_EPOCH};
use kiln_image::ImageConfig;
use kiln_store::{ImageRecord, LayerRecord, PutImage, Store};

/// Two stages, RUNs writing files and directories, COPYs from the context and a stage.
const DOCKERFILE: &str = "FROM lab/busybox:1 AS build\n\
    RUN mkdir -p /out/sub && echo one > /out/a && echo two > /out/sub/b\n\
    COPY old.txt /out/\n\
    RUN echo three > /out/c\n\
    FROM lab/busybox:1\n\
    ENV X=1\n\
    COPY --from=build /out /srv\n\
    RUN echo final > /final && mkdir /var/made\n";

/// mtime of the context's `old.txt`: older than any epoch the tests set.
const OLD_MTIME: i64 = 1_000;

fn context(dir: &Path) -> PathBuf {
    let ctx = dir.join("context");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), DOCKERFILE).unwrap();
    let old = ctx.join("old.txt");
    std::fs::write(&old, "old\n").unwrap();
    filetime::set_file_mtime(&old, filetime::FileTime::from_unix_time(OLD_MTIME, 0)).unwrap();
    ctx
}

fn build_ok(store: &Store, req: &BuildRequest) -> BuildResult {
    common::build(store, req).0.expect("build")
}

fn config_of(store: &Store, record: &ImageRecord) -> ImageConfig {
    let bytes = store.content().read_bytes(&record.id, 1 << 20).unwrap();
    ImageConfig::from_slice(&bytes).unwrap()
}

/// `(name, mtime)` of every entry of a layer blob.
fn entries(store: &Store, layer: &LayerRecord) -> Vec<(String, u64)> {
    let blob = store.content().open_blob(&layer.digest).unwrap();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(blob));
    tar.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
            (name, e.header().mtime().unwrap())
        })
        .collect()
}

/// Copies `lab/busybox:1` from `from` into `to` through a docker-archive: the same base image.
fn copy_base(from: &Store, to: &Store, work: &Path) {
    let base = from.resolve("lab/busybox:1").unwrap();
    let archive = work.join("base.tar");
    let image = kiln_export::ExportImage {
        manifest_digest: base.manifest_digest.clone(),
        tags: vec!["lab/busybox:1".into()],
    };
    let file = std::fs::File::create(&archive).unwrap();
    kiln_export::export_docker_archive(from.content(), &[image], file).unwrap();
    let file = std::io::BufReader::new(std::fs::File::open(&archive).unwrap());
    let imported = kiln_export::import_archive(to.content(), file).unwrap();
    to.put_image(&PutImage {
        manifest: imported[0].manifest_digest.clone(),
        tags: vec![kiln_image::Reference::parse("lab/busybox:1").unwrap()],
        intermediate: None,
    })
    .unwrap();
    assert_eq!(
        to.resolve("lab/busybox:1").unwrap().manifest_digest,
        base.manifest_digest
    );
}

#[test]
fn same_inputs_on_fresh_stores_give_the_same_digest() {
    let (tmp, first_store) = temp_store();
    import_busybox(&first_store);
    let second_store = Store::open(tmp.path().join("second")).unwrap();
    copy_base(&first_store, &second_store, tmp.path());
    let req = request(&context(tmp.path()), None, "t/repro:1");
    let first = build_ok(&first_store, &req);
    // Unclamped, every file the RUNs write would get a later mtime now.
    std::thread::sleep(Duration::from_millis(1100));
    let second = build_ok(&second_store, &req);
    assert_eq!(second.image.manifest_digest, first.image.manifest_digest);
    assert_eq!(second.image.id, first.image.id);
    let config = config_of(&first_store, &first.image);
    assert_eq!(
        config.oci.created().as_deref(),
        Some("1970-01-01T00:00:00Z")
    );
    let layers = first_store.image_layers(&first.image.id).unwrap();
    for layer in &layers[1..] {
        for (name, mtime) in entries(&first_store, layer) {
            assert_eq!(mtime, 0, "{name} of a built layer keeps its mtime");
        }
    }
    // A cold rebuild (every step runs again) lands on the same image too.
    let mut cold = req.clone();
    cold.no_cache = true;
    std::thread::sleep(Duration::from_millis(1100));
    let third = build_ok(&first_store, &cold);
    assert_eq!(third.image.manifest_digest, first.image.manifest_digest);
}

#[test]
fn source_date_epoch_bounds_mtimes_and_sets_created_not_touching_the_base() {
    const EPOCH: i64 = 1_700_000_000;
    let (tmp, store) = temp_store();
    import_busybox(&store);
    let base = store.resolve("lab/busybox:1").unwrap();
    let base_config = config_of(&store, &base);
    let base_layers = store.image_layers(&base.id).unwrap();
    let mut req = request(&context(tmp.path()), None, "t/epoch:1");
    req.build_args
        .insert(SOURCE_DATE_EPOCH.into(), EPOCH.to_string());
    let built = build_ok(&store, &req);
    let config = config_of(&store, &built.image);
    assert_eq!(
        config.oci.created().as_deref(),
        Some("2023-11-14T22:13:20Z")
    );
    let history = config.history();
    assert_eq!(
        history[0],
        base_config.history()[0],
        "the base's history is kept"
    );
    for entry in &history[1..] {
        assert_eq!(entry.created().as_deref(), Some("2023-11-14T22:13:20Z"));
    }
    let layers = store.image_layers(&built.image.id).unwrap();
    assert_eq!(
        layers[..1],
        base_layers[..],
        "the base layer is reused as imported"
    );
    let mut clamped = 0;
    let mut kept_old = false;
    for layer in &layers[1..] {
        for (name, mtime) in entries(&store, layer) {
            assert!(
                mtime <= EPOCH as u64,
                "{name}: mtime {mtime} after the epoch"
            );
            clamped += usize::from(mtime == EPOCH as u64);
            kept_old |= name == "srv/old.txt" && mtime == OLD_MTIME as u64;
        }
    }
    assert!(
        clamped > 0,
        "files written during the build are clamped to the epoch"
    );
    assert!(kept_old, "an mtime before the epoch is kept");

    // Another epoch writes other mtimes: no layer of the first build may be reused.
    req.build_args.remove(SOURCE_DATE_EPOCH);
    let (other, rec) = common::build(&store, &req);
    let other = other.expect("build");
    assert_ne!(other.image.id, built.image.id);
    let cached = rec
        .events()
        .iter()
        .filter(|e| {
            matches!(
                e,
                common::Event::Finished(_, kiln_build::StepOutcome::Cached, _)
            )
        })
        .count();
    assert_eq!(cached, 2, "only the two FROM steps count as cached");
}

#[test]
fn invalid_source_date_epoch_fails_the_build() {
    let (tmp, store) = temp_store();
    import_busybox(&store);
    let mut req = request(&context(tmp.path()), None, "t/bad:1");
    req.build_args
        .insert(SOURCE_DATE_EPOCH.into(), "yesterday".into());
    let err = common::build(&store, &req).0.expect_err("must fail");
    assert!(err.to_string().contains("SOURCE_DATE_EPOCH"), "{err}");
}
