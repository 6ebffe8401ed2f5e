//! kiln's archives against the real clients: `docker load`/`run`/`save`, `skopeo`, `umoci`.
//! These tests fail (never skip) when a tool or the docker daemon is missing.

mod cli_store_util;

use cli_store_util::{
    BUSYBOX_CHANGES, BUSYBOX_TAR, DockerImage, Kiln, cells, require, require_docker, run,
    unique_name,
};
use serde_json::Value;

fn docker_inspect(image: &str) -> Value {
    let docs: Vec<Value> =
        serde_json::from_str(&run("docker", &["image", "inspect", image])).unwrap();
    docs[0].clone()
}

#[test]
fn kiln_save_then_docker_load_and_run() {
    require_docker();
    let name = format!("{}:1", unique_name("save"));
    let _cleanup = DockerImage(name.clone());
    let k = Kiln::new();
    let id = k.import_busybox(&name);
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("image.tar");
    k.ok(["save", "-o", archive.to_str().unwrap(), &name]);
    let loaded = run("docker", &["load", "-i", archive.to_str().unwrap()]);
    assert!(
        loaded.contains(&format!("Loaded image: {name}")),
        "{loaded}"
    );
    assert_eq!(
        docker_inspect(&name)["Id"],
        id,
        "docker keeps kiln's image ID"
    );
    assert_eq!(run("docker", &["run", "--rm", &name, "echo", "ok"]), "ok\n");
}

#[test]
fn images_size_matches_docker_for_the_imported_base() {
    require_docker();
    let name = format!("{}:1", unique_name("size"));
    let _cleanup = DockerImage(name.clone());
    run("docker", &["import", BUSYBOX_TAR, &name]);
    let k = Kiln::new();
    k.import_busybox("size:1");
    let docker_size = run("docker", &["images", "--format", "{{.Size}}", &name]);
    let kiln_size = k.ok(["images", "--format", "{{.Size}}", "size:1"]);
    assert_eq!(kiln_size, docker_size, "SIZE column");
    assert_eq!(
        k.inspect("size:1")["Size"],
        docker_inspect(&name)["Size"],
        "exact bytes of `inspect`"
    );
    let docker_history = run("docker", &["history", "--format", "{{.Size}}", &name]);
    let kiln_history = k.ok(["history", "size:1"]);
    let row = cells(kiln_history.lines().nth(1).expect("one layer"));
    assert_eq!(
        row[2],
        docker_history.trim(),
        "history SIZE:\n{kiln_history}"
    );
}

#[test]
fn docker_save_then_kiln_load_and_save_keep_diff_ids() {
    require_docker();
    let name = format!("{}:1", unique_name("roundtrip"));
    let _cleanup = DockerImage(name.clone());
    let mut import = vec!["import"];
    for change in &BUSYBOX_CHANGES {
        import.extend(["--change", change]);
    }
    import.extend([BUSYBOX_TAR, name.as_str()]);
    run("docker", &import);
    let original = docker_inspect(&name);
    let dir = tempfile::tempdir().unwrap();
    let from_docker = dir.path().join("docker.tar");
    run(
        "docker",
        &["save", "-o", from_docker.to_str().unwrap(), &name],
    );

    let k = Kiln::new();
    assert_eq!(
        k.ok(["load", "-i", from_docker.to_str().unwrap()]),
        format!("Loaded image: {name}\n")
    );
    let loaded = k.inspect(&name);
    assert_eq!(loaded["RootFS"]["Layers"], original["RootFS"]["Layers"]);
    assert_eq!(loaded["Id"], original["Id"]);

    let from_kiln = dir.path().join("kiln.tar");
    k.ok(["save", "-o", from_kiln.to_str().unwrap(), &name]);
    run("docker", &["rmi", &name]);
    run("docker", &["load", "-i", from_kiln.to_str().unwrap()]);
    let reloaded = docker_inspect(&name);
    assert_eq!(reloaded["RootFS"]["Layers"], original["RootFS"]["Layers"]);
    assert_eq!(reloaded["Id"], original["Id"]);
    assert_eq!(run("docker", &["run", "--rm", &name, "echo", "ok"]), "ok\n");
}

#[test]
fn oci_save_is_read_by_skopeo_and_unpacked_by_umoci() {
    require("skopeo");
    require("umoci");
    let k = Kiln::new();
    k.import_busybox("lab/busybox:1");
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("oci.tar");
    k.ok([
        "save",
        "--format",
        "oci",
        "-o",
        archive.to_str().unwrap(),
        "lab/busybox:1",
    ]);
    let transport = format!("oci-archive:{}", archive.display());
    let info: Value = serde_json::from_str(&run("skopeo", &["inspect", &transport])).unwrap();
    let manifest = k.manifest("lab/busybox:1");
    assert_eq!(info["Layers"][0], manifest["layers"][0]["digest"]);
    let config: Value =
        serde_json::from_str(&run("skopeo", &["inspect", "--config", &transport])).unwrap();
    assert_eq!(
        config["rootfs"]["diff_ids"],
        k.inspect("lab/busybox:1")["RootFS"]["Layers"]
    );

    let layout = dir.path().join("layout");
    std::fs::create_dir(&layout).unwrap();
    run(
        "tar",
        &[
            "-C",
            layout.to_str().unwrap(),
            "-xf",
            archive.to_str().unwrap(),
        ],
    );
    let bundle = dir.path().join("bundle");
    run(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:1", layout.display()),
            bundle.to_str().unwrap(),
        ],
    );
    assert!(
        bundle.join("rootfs/usr/bin/busybox").is_file(),
        "umoci unpacked the rootfs"
    );
    assert!(bundle.join("config.json").is_file());
}
