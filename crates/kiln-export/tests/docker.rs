//! Real `docker load`/`docker save` against kiln's archives. Needs the
//! docker client and daemon (started here if not running); fails loudly
//! without them.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use common::*;
use kiln_export::{ExportImage, export_docker_archive, import_archive};

const DOCKERD: &str = "/usr/sbin/dockerd";

/// Makes sure a daemon answers, starting one if needed.
fn ensure_dockerd() {
    static START: Once = Once::new();
    START.call_once(|| {
        require_tool("docker");
        if docker_ready() {
            return;
        }
        assert!(
            std::path::Path::new(DOCKERD).exists(),
            "docker daemon not running and {DOCKERD} is missing"
        );
        // Detached through a shell so the daemon outlives this test process.
        let log = std::env::temp_dir().join("kiln-export-dockerd.log");
        let started = Command::new("sh")
            .args(["-c", &format!("{DOCKERD} >'{}' 2>&1 &", log.display())])
            .status()
            .unwrap_or_else(|e| panic!("cannot start {DOCKERD}: {e}"));
        assert!(started.success(), "cannot start {DOCKERD}");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !docker_ready() {
            let waited_too_long = Instant::now() > deadline;
            assert!(
                !waited_too_long,
                "dockerd did not come up within 60 s; see {}",
                log.display()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    });
}

fn docker_ready() -> bool {
    Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn docker(args: &[&str]) -> String {
    let out = run(Command::new("docker").args(args));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn docker_stdin(args: &[&str], input: &[u8]) -> String {
    let mut child = Command::new("docker")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run docker");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Runs busybox in `image` without network and returns its output.
fn busybox(image: &str, args: &[&str]) -> String {
    let mut all = vec!["run", "--rm", "--network", "none", image, "/bin/busybox"];
    all.extend_from_slice(args);
    docker(&all)
}

/// Removes test images even when an assertion fails.
struct Cleanup(Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for image in &self.0 {
            let _ = Command::new("docker").args(["rmi", "-f", image]).output();
        }
    }
}

fn unique(name: &str) -> String {
    format!("kiln-export-test/{name}:{}", std::process::id())
}

#[test]
fn docker_loads_and_runs_a_kiln_export() {
    load_and_run(OCI, "busybox-oci");
}

#[test]
fn docker_loads_and_runs_an_export_of_a_docker_v2s2_manifest() {
    load_and_run(DOCKER_V2S2, "busybox-v2s2");
}

fn load_and_run(flavor: Flavor, name: &str) {
    ensure_dockerd();
    let tag = unique(name);
    let _cleanup = Cleanup(vec![tag.clone()]);
    let src = temp_store();
    let layers = [busybox_layer(), small_layers().remove(0)];
    let image = store_image_as(&src.store, &layers, flavor);
    let mut tar = Vec::new();
    let images = [ExportImage {
        manifest_digest: image.manifest.clone(),
        tags: vec![format!("docker.io/{tag}")],
    }];
    export_docker_archive(&src.store, &images, &mut tar).unwrap();

    let loaded = docker_stdin(&["load"], &tar);
    assert!(loaded.contains(&tag), "docker load output: {loaded}");
    assert_eq!(
        docker(&["inspect", "--format", "{{.Id}}", &tag]),
        image.config.to_string()
    );
    let layers = docker(&["inspect", "--format", "{{json .RootFS.Layers}}", &tag]);
    let want: Vec<String> = image.diff_ids.iter().map(ToString::to_string).collect();
    assert_eq!(layers, serde_json::to_string(&want).unwrap());
    let ok = busybox(&tag, &["echo", "ok"]);
    assert_eq!(ok, "ok");
    let hello = busybox(&tag, &["cat", "/hello.txt"]);
    assert_eq!(hello, "hello from the base layer");
}

#[test]
fn docker_save_import_export_load_keeps_layers_and_image_id() {
    ensure_dockerd();
    let original = unique("imported");
    let reloaded = unique("reloaded");
    let _cleanup = Cleanup(vec![original.clone(), reloaded.clone()]);
    docker_stdin(
        &["import", "--change", "CMD [\"/bin/sh\"]", "-", &original],
        &busybox_layer(),
    );
    let saved = tempfile::NamedTempFile::new().unwrap();
    docker(&["save", "-o", &saved.path().to_string_lossy(), &original]);
    let want_layers = docker(&["inspect", "--format", "{{json .RootFS.Layers}}", &original]);
    let want_id = docker(&["inspect", "--format", "{{.Id}}", &original]);

    let store = temp_store();
    let imported =
        import_archive(&store.store, std::fs::File::open(saved.path()).unwrap()).unwrap();
    assert_eq!(imported.len(), 1);
    assert_eq!(imported[0].tags, vec![original.clone()]);
    assert_eq!(imported[0].config_digest.to_string(), want_id);

    let mut tar = Vec::new();
    let images = [ExportImage {
        manifest_digest: imported[0].manifest_digest.clone(),
        tags: vec![reloaded.clone()],
    }];
    export_docker_archive(&store.store, &images, &mut tar).unwrap();
    docker(&["rmi", &original]);
    docker_stdin(&["load"], &tar);
    assert_eq!(
        docker(&["inspect", "--format", "{{json .RootFS.Layers}}", &reloaded]),
        want_layers
    );
    assert_eq!(
        docker(&["inspect", "--format", "{{.Id}}", &reloaded]),
        want_id
    );
    let ok = busybox(&reloaded, &["echo", "ok"]);
    assert_eq!(ok, "ok");
}
