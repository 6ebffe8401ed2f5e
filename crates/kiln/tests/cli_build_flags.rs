//! `kiln build` flags as buildx has them: `--secret` with `RUN --mount=type=secret`,
//! `--platform`, `--compression`, `--output type=local|tar`, and their errors.

mod cli_store_util;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

use cli_store_util::bases;

const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A fresh store with `lab/busybox:1` imported as the conformance cases expect.
fn store_with_busybox() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    kiln(root.path())
        .arg("import")
        .arg(bases().join("busybox.tar"))
        .arg("lab/busybox:1")
        .args(["--change", "CMD [\"sh\"]", "--change"])
        .arg(format!("ENV {PATH_ENV}"))
        .assert()
        .success();
    root
}

fn kiln(root: &Path) -> Command {
    let mut cmd = Command::cargo_bin("kiln").unwrap();
    cmd.arg("--root").arg(root);
    cmd
}

/// A context directory holding `dockerfile` (and the returned guard keeps it).
fn context(dockerfile: &str) -> tempfile::TempDir {
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("Dockerfile"), dockerfile).unwrap();
    ctx
}

/// `kiln build -q` with `args`; returns the image ID.
fn build(root: &Path, ctx: &Path, args: &[&str]) -> String {
    let out = kiln(root)
        .args(["build", "-q"])
        .args(args)
        .arg(ctx)
        .assert()
        .success();
    String::from_utf8(out.get_output().stdout.clone())
        .unwrap()
        .trim()
        .to_owned()
}

/// The steps a build ran (not served by the cache), from its `--metadata-file`.
fn ran_steps(meta: &Path) -> Vec<String> {
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(meta).unwrap()).unwrap();
    doc["kiln.steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["cached"] == false)
        .map(|s| s["step"].as_str().unwrap().to_owned())
        .collect()
}

/// One layer of a saved image: its entry names and every file's bytes.
struct Layer {
    files: BTreeMap<String, Vec<u8>>,
}

/// Reads a tar (plain, gzip or zstd by magic) into entry names and contents.
fn read_tar(blob: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let reader: Box<dyn Read + '_> = match blob {
        [0x1f, 0x8b, ..] => Box::new(flate2::read::GzDecoder::new(blob)),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Box::new(zstd::stream::read::Decoder::new(blob).unwrap()),
        _ => Box::new(blob),
    };
    let mut archive = tar::Archive::new(reader);
    let mut files = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = String::from_utf8(entry.path_bytes().to_vec()).unwrap();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        files.insert(name, data);
    }
    files
}

/// The layers of `image` as `kiln save --format oci` writes them, bottom first.
fn saved_layers(root: &Path, image: &str) -> Vec<Layer> {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("image.tar");
    kiln(root)
        .args(["save", "--format", "oci", "-o"])
        .arg(&archive)
        .arg(image)
        .assert()
        .success();
    let files = read_tar(&std::fs::read(&archive).unwrap());
    let blob = |digest: &str| &files[&format!("blobs/sha256/{}", &digest["sha256:".len()..])];
    let json = |bytes: &[u8]| serde_json::from_slice::<serde_json::Value>(bytes).unwrap();
    let index = json(&files["index.json"]);
    let manifest = json(blob(index["manifests"][0]["digest"].as_str().unwrap()));
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| Layer {
            files: read_tar(blob(l["digest"].as_str().unwrap())),
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

const SECRET: &str = "kiln-secret-value-42";

/// Each RUN writes what it saw upper-cased, so the layers prove it saw the secret without
/// holding the secret itself.
const SECRET_DOCKERFILE: &str = "FROM lab/busybox:1
RUN --mount=type=secret,id=tok tr a-z A-Z < /run/secrets/tok > /default && stat -c '%a %u' /run/secrets/tok >> /default
RUN --mount=type=secret,id=tok,target=/etc/app/tok.conf,mode=0440,uid=1000,gid=1000 tr a-z A-Z < /etc/app/tok.conf > /custom && stat -c '%a %u %g' /etc/app/tok.conf >> /custom
RUN --mount=type=secret,id=absent test ! -e /run/secrets/absent && echo skipped > /absent
RUN --mount=type=secret,id=tok,env=TOKEN echo \"$TOKEN\" | tr a-z A-Z > /env && test ! -e /run/secrets/tok
";

#[test]
fn secrets_reach_only_their_run_and_never_a_layer_or_cache_key() {
    let root = store_with_busybox();
    let ctx = context(SECRET_DOCKERFILE);
    let secret = tempfile::NamedTempFile::new().unwrap().into_temp_path();
    std::fs::write(&secret, SECRET).unwrap();
    let src = format!("id=tok,src={}", secret.display());
    let id = build(root.path(), ctx.path(), &["-t", "sec:1", "--secret", &src]);
    let layers = saved_layers(root.path(), "sec:1");
    let upper = SECRET.to_uppercase();
    let file = |name: &str| {
        layers
            .iter()
            .rev()
            .find_map(|l| l.files.get(name))
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_else(|| panic!("{name} missing from the image"))
    };
    assert_eq!(file("default"), format!("{upper}400 0\n"));
    assert_eq!(file("custom"), format!("{upper}440 1000 1000\n"));
    assert_eq!(file("absent"), "skipped\n");
    assert_eq!(file("env"), format!("{upper}\n"));
    for layer in &layers[1..] {
        for (name, data) in &layer.files {
            assert!(!contains(data, SECRET.as_bytes()), "secret in {name}");
            assert!(
                !name.starts_with("run") && !name.starts_with("etc/app"),
                "mountpoint left in a layer: {name}"
            );
        }
    }
    // A new secret value is not a new cache key, as in BuildKit.
    std::fs::write(&secret, "another value").unwrap();
    let meta = ctx.path().join("meta.json");
    let meta_arg = meta.to_str().unwrap();
    let again = build(
        root.path(),
        ctx.path(),
        &["--secret", &src, "--metadata-file", meta_arg],
    );
    assert_eq!(again, id);
    assert_eq!(ran_steps(&meta), Vec::<String>::new());
}

#[test]
fn secret_from_an_env_var_and_the_required_flag() {
    let root = store_with_busybox();
    let ctx = context(
        "FROM lab/busybox:1\nRUN --mount=type=secret,id=tok,required=true tr a-z A-Z < /run/secrets/tok > /got\n",
    );
    kiln(root.path())
        .env("KILN_TEST_TOKEN", SECRET)
        .args([
            "build",
            "-t",
            "env:1",
            "--secret",
            "id=tok,env=KILN_TEST_TOKEN",
        ])
        .arg(ctx.path())
        .assert()
        .success();
    let layers = saved_layers(root.path(), "env:1");
    let got = &layers.last().unwrap().files["got"];
    assert_eq!(got, SECRET.to_uppercase().as_bytes());
    kiln(root.path())
        .args(["build", "--no-cache"])
        .arg(ctx.path())
        .assert()
        .failure()
        .stderr(predicate::str::contains("secret \"tok\" not found"));
}

#[test]
fn bad_secret_flags_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let ctx = context("FROM scratch\n");
    for (flag, message) in [
        ("id=a,bogus=1", "unknown key \"bogus\""),
        (
            "id=a,src=/nonexistent/kiln-secret",
            "cannot read /nonexistent/kiln-secret",
        ),
        ("src=/etc/hostname", "id=ID is required"),
        ("id=a,type=ssh", "unsupported type \"ssh\""),
    ] {
        kiln(root.path())
            .args(["build", "--secret", flag])
            .arg(ctx.path())
            .assert()
            .failure()
            .stderr(predicate::str::contains(message));
    }
}

#[test]
fn ssh_mounts_are_refused_with_their_location() {
    let root = store_with_busybox();
    for mount in ["type=ssh", "type=ssh,required=true"] {
        let ctx = context(&format!(
            "FROM lab/busybox:1\nRUN true\nRUN --mount={mount} true\n"
        ));
        kiln(root.path())
            .arg("build")
            .arg(ctx.path())
            .assert()
            .failure()
            .stderr(predicate::str::contains(
                "Dockerfile:3:13: RUN --mount=type=ssh is not supported yet",
            ))
            .stderr(predicate::str::contains("panick").not());
    }
}

/// `key` of the config of `image`, read from `kiln inspect`.
fn config_field(root: &Path, image: &str, key: &str) -> serde_json::Value {
    let out = kiln(root).args(["inspect", image]).assert().success();
    let doc: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let doc = doc.as_array().map_or(&doc, |a| &a[0]);
    doc[key].clone()
}

#[test]
fn host_platform_and_its_automatic_args() {
    let root = store_with_busybox();
    let ctx = context(
        "FROM --platform=$BUILDPLATFORM lab/busybox:1 AS b\n\
         FROM --platform=$TARGETPLATFORM b\n\
         ARG BUILDPLATFORM BUILDOS BUILDARCH TARGETPLATFORM TARGETOS TARGETARCH TARGETVARIANT\n\
         RUN echo \"$BUILDPLATFORM $BUILDOS $BUILDARCH $TARGETPLATFORM $TARGETOS $TARGETARCH [$TARGETVARIANT]\" > /p\n",
    );
    for (tag, args) in [
        ("plat:default", vec![]),
        ("plat:amd64", vec!["--platform", "linux/amd64"]),
    ] {
        let mut all = vec!["-t", tag];
        all.extend(args);
        build(root.path(), ctx.path(), &all);
        let layers = saved_layers(root.path(), tag);
        assert_eq!(
            String::from_utf8_lossy(&layers.last().unwrap().files["p"]),
            "linux/amd64 linux amd64 linux/amd64 linux amd64 []\n"
        );
        assert_eq!(config_field(root.path(), tag, "Architecture"), "amd64");
        assert_eq!(config_field(root.path(), tag, "Os"), "linux");
    }
}

#[test]
fn other_platforms_are_refused_unless_nothing_runs() {
    let root = store_with_busybox();
    let run = context("FROM lab/busybox:1\nRUN true\n");
    kiln(root.path())
        .args(["build", "--platform", "linux/arm64"])
        .arg(run.path())
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "kiln cannot build for linux/arm64 on linux/amd64: no emulation",
        ));
    let pinned = context(
        "FROM lab/busybox:1\nRUN true\nFROM --platform=linux/arm64 lab/busybox:1\nRUN true\n",
    );
    kiln(root.path())
        .arg("build")
        .arg(pinned.path())
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "Dockerfile:3:17: kiln cannot build for linux/arm64 on linux/amd64: no emulation",
        ));
    for bad in ["linux/", "arm64/linux", "linux/z80"] {
        kiln(root.path())
            .args(["build", "--platform", bad])
            .arg(run.path())
            .assert()
            .failure()
            .stderr(predicate::str::contains(format!(
                "invalid --platform \"{bad}\""
            )));
    }
    // Cross-compiling: the builder runs on the host, the scratch result is for the target.
    let cross = context(
        "FROM --platform=$BUILDPLATFORM lab/busybox:1 AS b\nARG TARGETARCH\nRUN echo $TARGETARCH > /arch\n\
         FROM scratch AS files\nCOPY --from=b /arch /arch\nFROM files\nCOPY --from=b /arch /again\n",
    );
    build(
        root.path(),
        cross.path(),
        &["-t", "cross:arm", "--platform", "linux/arm/v7"],
    );
    assert_eq!(
        config_field(root.path(), "cross:arm", "Architecture"),
        "arm"
    );
    assert_eq!(config_field(root.path(), "cross:arm", "Variant"), "v7");
    let layers = saved_layers(root.path(), "cross:arm");
    assert_eq!(layers[0].files["arch"], b"arm\n");
    assert_eq!(layers[1].files["again"], b"arm\n");
}

/// Runs a tool the test needs, failing loudly when it is missing or fails.
fn tool(name: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(name)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{name} is needed (scripts/setup.sh installs it): {e}"));
    assert!(
        out.status.success(),
        "{name} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Every path under `dir` with its type, mode, owner and content (or link target).
fn tree(dir: &Path) -> BTreeMap<String, String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let what = if meta.is_symlink() {
                format!("-> {}", std::fs::read_link(&path).unwrap().display())
            } else if meta.is_dir() {
                todo.push(path.clone());
                "dir".into()
            } else {
                format!("{:?}", std::fs::read(&path).unwrap_or_default())
            };
            let rel = path.strip_prefix(dir).unwrap().display().to_string();
            let mode = meta.mode() & 0o7777;
            out.insert(
                rel,
                format!("{mode:o} {}:{} {what}", meta.uid(), meta.gid()),
            );
        }
    }
    out
}

const LAYERS_DOCKERFILE: &str = "FROM lab/busybox:1
RUN mkdir -p /out && echo hi > /out/a && ln -s ../etc/passwd /out/link && chmod 4750 /out/a
COPY Dockerfile /out/df
WORKDIR /w
";

/// Builds the layers Dockerfile with `compression` into a fresh store, saves it as an OCI
/// archive, and returns the store, the archive, and its layer media types as skopeo reads them.
fn build_compressed(compression: &str) -> (tempfile::TempDir, PathBuf, Vec<String>) {
    let root = store_with_busybox();
    let ctx = context(LAYERS_DOCKERFILE);
    build(
        root.path(),
        ctx.path(),
        &["-t", "c:1", "--compression", compression],
    );
    let archive = root.path().join("c.oci.tar");
    kiln(root.path())
        .args(["save", "--format", "oci", "-o"])
        .arg(&archive)
        .arg("c:1")
        .assert()
        .success();
    let raw = tool(
        "skopeo",
        &[
            "inspect",
            "--raw",
            &format!("oci-archive:{}", archive.display()),
        ],
    );
    let manifest: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let media = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap().to_owned())
        .collect();
    (root, archive, media)
}

/// The rootfs umoci unpacks from `archive`, after skopeo (which reads zstd; umoci 0.4 does
/// not) rewrote its layers as gzip.
fn unpacked_by_umoci(archive: &Path, work: &Path) -> BTreeMap<String, String> {
    let layout = work.join("layout");
    let src = format!("oci-archive:{}", archive.display());
    let dest = format!("oci:{}:img", layout.display());
    tool(
        "skopeo",
        &[
            "copy",
            "-q",
            "--dest-compress",
            "--dest-compress-format",
            "gzip",
            &src,
            &dest,
        ],
    );
    let bundle = work.join("bundle");
    let image = format!("{}:img", layout.display());
    tool(
        "umoci",
        &["unpack", "--image", &image, bundle.to_str().unwrap()],
    );
    tree(&bundle.join("rootfs"))
}

#[test]
fn zstd_and_uncompressed_layers_hold_the_same_files_as_gzip() {
    const GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    let (_gz_root, gz_archive, gz_media) = build_compressed("gzip");
    let (_zst_root, zst_archive, zst_media) = build_compressed("zstd");
    let (plain_root, _, plain_media) = build_compressed("uncompressed");
    // The imported base layer stays gzip; the build's three layers follow --compression.
    assert_eq!(gz_media, [GZIP; 4]);
    let made = |media: &[String]| media[1..].to_vec();
    assert_eq!(
        made(&zst_media),
        ["application/vnd.oci.image.layer.v1.tar+zstd"; 3]
    );
    assert_eq!(
        made(&plain_media),
        ["application/vnd.oci.image.layer.v1.tar"; 3]
    );
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir(work.path().join("gz")).unwrap();
    std::fs::create_dir(work.path().join("zst")).unwrap();
    let gz = unpacked_by_umoci(&gz_archive, &work.path().join("gz"));
    let zst = unpacked_by_umoci(&zst_archive, &work.path().join("zst"));
    assert!(gz["out/a"].starts_with("4750 0:0"), "{}", gz["out/a"]);
    assert_eq!(gz["out/link"], "777 0:0 -> ../etc/passwd");
    assert_eq!(zst, gz);
    let plain = saved_layers(plain_root.path(), "c:1");
    assert_eq!(plain[1].files["out/a"], b"hi\n");
}

#[test]
fn unknown_compression_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let ctx = context("FROM scratch\n");
    kiln(root.path())
        .args(["build", "--compression", "brotli"])
        .arg(ctx.path())
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "invalid value 'brotli' for '--compression",
        ))
        .stderr(predicate::str::contains("gzip, zstd, uncompressed"));
}

#[test]
fn a_zstd_build_reuses_gzip_layers_from_the_cache() {
    let root = store_with_busybox();
    let ctx = context(LAYERS_DOCKERFILE);
    let gz = build(root.path(), ctx.path(), &["--compression", "gzip"]);
    let zst = build(root.path(), ctx.path(), &["--compression", "zstd"]);
    assert_eq!(zst, gz, "cached steps keep the layers they recorded");
}

/// Symlinks that point out of the rootfs (absolute, climbing, to a host file) and files
/// copied through them.
const LINKS_DOCKERFILE: &str = "FROM lab/busybox:1 AS b
RUN mkdir -p /out/data && echo d > /out/data/file && ln -s / /out/escape && ln -s /etc/passwd /out/passwd && ln -s ../../.. /out/up
FROM scratch
COPY --from=b /out /
COPY f.txt /escape/via-escape.txt
COPY f.txt /up/via-up.txt
";

#[test]
fn local_output_writes_the_files_inside_dest_only() {
    let root = store_with_busybox();
    let ctx = context(LINKS_DOCKERFILE);
    std::fs::write(ctx.path().join("f.txt"), "f\n").unwrap();
    let work = tempfile::tempdir().unwrap();
    let (dest, outside) = (work.path().join("dest"), work.path().join("outside"));
    std::fs::create_dir_all(&dest).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(dest.join("keep.txt"), "mine").unwrap();
    // A link already in dest where the image has a directory must not lead out of it.
    std::os::unix::fs::symlink(&outside, dest.join("data")).unwrap();
    let output = format!("type=local,dest={}", dest.display());
    build(root.path(), ctx.path(), &["-o", &output]);
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "wrote outside dest"
    );
    let got = tree(&dest);
    assert_eq!(got["escape"], "777 0:0 -> /");
    assert_eq!(got["passwd"], "777 0:0 -> /etc/passwd");
    assert_eq!(got["up"], "777 0:0 -> ../../..");
    assert_eq!(got["data"], "755 0:0 dir");
    assert!(
        got["data/file"].ends_with(&format!("{:?}", b"d\n")),
        "{got:?}"
    );
    assert!(
        got.contains_key("via-escape.txt") && got.contains_key("via-up.txt"),
        "{got:?}"
    );
    assert!(got.contains_key("keep.txt"), "files already in dest stay");
    // `-o DIR` is buildx's shorthand for type=local.
    let short = work.path().join("short");
    build(root.path(), ctx.path(), &["-o", short.to_str().unwrap()]);
    let mut expected = got.clone();
    expected.remove("keep.txt");
    assert_eq!(tree(&short), expected);
}

#[test]
fn tar_output_to_a_file_and_to_stdout() {
    let root = store_with_busybox();
    let ctx = context(LINKS_DOCKERFILE);
    std::fs::write(ctx.path().join("f.txt"), "f\n").unwrap();
    let file = ctx.path().join("out.tar");
    let output = format!("type=tar,dest={}", file.display());
    build(root.path(), ctx.path(), &["-o", &output]);
    let from_file = read_tar(&std::fs::read(&file).unwrap());
    let names: Vec<&str> = from_file.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "data/",
            "data/file",
            "escape",
            "passwd",
            "up",
            "via-escape.txt",
            "via-up.txt"
        ]
    );
    // `dest=-` streams the tar to stdout, so -q prints no image ID there.
    let out = kiln(root.path())
        .args(["build", "-q", "-o", "type=tar,dest=-"])
        .arg(ctx.path())
        .assert()
        .success();
    assert_eq!(read_tar(&out.get_output().stdout), from_file);
    // The target stage decides what is written.
    let out = kiln(root.path())
        .args(["build", "--target", "b", "-o", "-"])
        .arg(ctx.path())
        .assert()
        .success();
    let builder = read_tar(&out.get_output().stdout);
    assert!(builder.contains_key("out/data/file") && builder.contains_key("bin/sh"));
}

#[test]
fn image_outputs_still_work_and_bad_outputs_are_refused() {
    let root = store_with_busybox();
    let ctx = context("FROM lab/busybox:1\nRUN echo hi > /hi\n");
    let oci = ctx.path().join("img.oci.tar");
    build(
        root.path(),
        ctx.path(),
        &["-o", &format!("type=oci,dest={}", oci.display())],
    );
    let raw = tool(
        "skopeo",
        &[
            "inspect",
            "--raw",
            &format!("oci-archive:{}", oci.display()),
        ],
    );
    assert!(
        raw.contains("application/vnd.oci.image.manifest.v1+json"),
        "{raw}"
    );
    for (output, message) in [
        ("type=local", "--output type=local needs dest=DIR"),
        ("type=tar", "--output type=tar needs dest=FILE"),
        (
            "type=local,dest=x,compression=zstd",
            "unknown field \"compression\"",
        ),
        (
            "type=registry,dest=x",
            "--output type=registry is not supported",
        ),
    ] {
        kiln(root.path())
            .args(["build", "-o", output])
            .arg(ctx.path())
            .assert()
            .failure()
            .stderr(predicate::str::contains(message));
    }
}
