//! What kiln pushes must be readable by other clients: skopeo and docker.
//! Both are required; a missing tool or daemon fails the test.

mod common;

use std::process::Command;

use common::{Mode, Registry, build_image, build_index_blob, client, require, store};
use kiln_image::MediaFlavor;

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn skopeo_inspects_what_kiln_pushed() {
    require("skopeo", "skopeo");
    let registry = Registry::start(Mode::Plain);
    let (_src_dir, src) = store();
    let image = build_image(&src, "amd64", 4_000, MediaFlavor::Oci);
    let arm = build_image(&src, "arm64", 4_000, MediaFlavor::Oci);
    let index = build_index_blob(&src, &[(&image, "linux/amd64"), (&arm, "linux/arm64")]);
    let c = client("linux/amd64");
    c.push(&src, &image.manifest, &registry.reference("kiln/skopeo:v1"))
        .unwrap();
    c.push(&src, &index, &registry.reference("kiln/skopeo:multi"))
        .unwrap();

    let url = format!("docker://{}/kiln/skopeo:v1", registry.host());
    let out = run(Command::new("skopeo").args(["inspect", "--tls-verify=false", &url]));
    let info: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(info["Digest"], image.manifest.to_string());
    assert_eq!(info["Architecture"], "amd64");
    assert_eq!(info["Layers"][0], image.layer.to_string());

    let url = format!("docker://{}/kiln/skopeo:multi", registry.host());
    let raw = run(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false", &url]));
    assert_eq!(raw.as_bytes(), src.read_bytes(&index, 1 << 20).unwrap());
}

#[test]
fn docker_pulls_what_kiln_pushed() {
    require("docker", "docker.io");
    let info = Command::new("docker").arg("info").output();
    assert!(
        info.is_ok_and(|o| o.status.success()),
        "dockerd is not running: start `/usr/sbin/dockerd &` before this test"
    );
    let registry = Registry::start(Mode::Plain);
    let (_src_dir, src) = store();
    let image = build_image(&src, "amd64", 4_000, MediaFlavor::Docker);
    let tag = format!("kiln/docker-pull:t{}", std::process::id());
    let reference = registry.reference(&tag);
    client("linux/amd64")
        .push(&src, &image.manifest, &reference)
        .unwrap();

    let name = format!("{}/{tag}", registry.host());
    let out = run(Command::new("docker").args(["pull", &name]));
    let inspected = Command::new("docker")
        .args([
            "image",
            "inspect",
            "--format",
            "{{.Id}} {{index .RepoDigests 0}}",
            &name,
        ])
        .output();
    let cleanup = Command::new("docker").args(["rmi", "-f", &name]).output();
    assert!(out.contains(&image.manifest.to_string()), "{out}");
    let inspected = String::from_utf8_lossy(&inspected.unwrap().stdout).into_owned();
    assert!(
        inspected.starts_with(&image.config.to_string()),
        "{inspected}"
    );
    assert!(
        inspected.trim().ends_with(&image.manifest.to_string()),
        "{inspected}"
    );
    assert!(
        cleanup.is_ok_and(|o| o.status.success()),
        "docker rmi failed"
    );
}
