//! Helpers shared by the `cli_store*` tests: a kiln store in a temp dir, output parsing, tools.
// Each test crate uses a different subset of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

/// The busybox rootfs made by `/work/shared/conformance/make-bases.sh`.
pub const BUSYBOX_TAR: &str = "/var/cache/kiln-test/bases/busybox.tar";
/// The `--change` lines `lab/busybox:1` was imported with.
pub const BUSYBOX_CHANGES: [&str; 2] = [
    r#"CMD ["sh"]"#,
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
];

/// A kiln store of its own in a temp dir.
pub struct Kiln {
    pub root: tempfile::TempDir,
}

impl Kiln {
    pub fn new() -> Self {
        Self {
            root: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// `kiln --root ROOT ARGS...`, not yet run.
    pub fn cmd<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = Command::cargo_bin("kiln").expect("kiln binary");
        cmd.arg("--root").arg(self.root.path()).args(args);
        cmd
    }

    /// Runs and returns stdout, failing the test (with stderr) on a non-zero exit.
    pub fn ok<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let out = self.cmd(args).output().expect("running kiln");
        assert_success(&out);
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// Runs expecting failure; returns stderr.
    pub fn fails<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let out = self.cmd(args).output().expect("running kiln");
        assert!(
            !out.status.success(),
            "expected failure, got stdout:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).expect("utf-8 stderr")
    }

    /// Imports the busybox base as `name` with its `--change` lines; returns the image ID.
    pub fn import_busybox(&self, name: &str) -> String {
        let mut args = vec!["import".to_owned(), BUSYBOX_TAR.to_owned(), name.to_owned()];
        for change in BUSYBOX_CHANGES {
            args.extend(["--change".to_owned(), change.to_owned()]);
        }
        let id = self.ok(&args).trim().to_owned();
        assert!(
            id.starts_with("sha256:") && id.len() == 71,
            "import printed {id:?}"
        );
        id
    }

    /// `kiln inspect IMAGE` as JSON (the single element).
    pub fn inspect(&self, image: &str) -> serde_json::Value {
        let out = self.ok(["inspect", image]);
        let mut docs: Vec<serde_json::Value> = serde_json::from_str(&out).expect("inspect JSON");
        assert_eq!(docs.len(), 1, "{out}");
        docs.remove(0)
    }

    pub fn path(&self) -> &Path {
        self.root.path()
    }
}

/// The base rootfs tarballs (`KILN_TEST_BASES`), failing loudly when setup has not made them.
pub fn bases() -> PathBuf {
    let dir = PathBuf::from(
        std::env::var("KILN_TEST_BASES").unwrap_or("/var/cache/kiln-test/bases".into()),
    );
    assert!(
        dir.join("busybox.tar").is_file(),
        "base tarballs missing in {}: run scripts/setup.sh",
        dir.display()
    );
    dir
}

/// `("stage step", cached)` of every step a `--metadata-file` document lists.
pub fn metadata_steps(doc: &serde_json::Value) -> Vec<(String, bool)> {
    doc["kiln.steps"]
        .as_array()
        .expect("kiln.steps in the metadata file")
        .iter()
        .map(|s| {
            let stage = s["stage"].as_str().expect("stage");
            let step = s["step"].as_str().expect("step");
            (
                format!("{stage} {step}"),
                s["cached"].as_bool().expect("cached"),
            )
        })
        .collect()
}

/// Runs a tool, failing the test with its stderr on a non-zero exit; returns stdout.
pub fn run(program: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    assert_success(&out);
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

pub fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Cells of a table line (columns are at least three spaces apart).
pub fn cells(line: &str) -> Vec<String> {
    line.split("   ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Fails loudly when an external tool the test needs is missing.
pub fn require(tool: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("this test needs `{tool}` on PATH, and it is not installed"))
}

/// Fails loudly unless the docker daemon answers.
pub fn require_docker() {
    require("docker");
    let info = std::process::Command::new("docker")
        .arg("info")
        .output()
        .expect("running docker info");
    assert!(
        info.status.success(),
        "this test needs a running docker daemon (start /usr/sbin/dockerd)"
    );
}

/// Runs a shell script, failing the test on error; returns stdout.
pub fn sh(script: &str) -> String {
    let out = std::process::Command::new("sh")
        .args(["-ec", script])
        .output()
        .expect("running sh");
    assert_success(&out);
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// Unique name for images given to the shared docker daemon.
pub fn unique_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("kiln-test/{prefix}-{}-{nanos}", std::process::id())
}

/// Removes a docker image when dropped, so failed tests do not leave images behind.
pub struct DockerImage(pub String);

impl Drop for DockerImage {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rmi", "-f", &self.0])
            .output();
    }
}

impl Kiln {
    /// A blob of the store's content, parsed as JSON.
    pub fn blob_json(&self, digest: &str) -> serde_json::Value {
        let bytes = std::fs::read(self.blob_path(digest)).expect("reading a blob");
        serde_json::from_slice(&bytes).expect("blob JSON")
    }

    /// Where the store keeps a blob.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
        self.path().join("content/blobs/sha256").join(hex)
    }

    /// The manifest of an image, read from the store's content directory.
    pub fn manifest(&self, image: &str) -> serde_json::Value {
        let doc = self.inspect(image);
        let digest = doc["RepoDigests"][0].as_str().expect("a repo digest");
        let (_, digest) = digest.split_once('@').expect("name@digest");
        self.blob_json(digest)
    }
}

/// sha256 of a file, as `sha256:<hex>`.
pub fn sha256_file(path: &Path) -> String {
    let out = sh(&format!("sha256sum '{}'", path.display()));
    format!(
        "sha256:{}",
        out.split_whitespace().next().expect("sha256sum output")
    )
}

impl Kiln {
    /// `images -a` in a form that does not change as time passes (no "2 seconds ago").
    pub fn snapshot(&self) -> String {
        self.ok([
            "images",
            "-a",
            "--no-trunc",
            "--digests",
            "--format",
            "{{.ID}} {{.Repository}}:{{.Tag}} {{.Digest}} {{.Size}} {{.CreatedAt}}",
        ])
    }
}
