//! kiln's archives read by skopeo and umoci, and skopeo's output read back
//! by kiln. Fails loudly if skopeo or umoci is missing.

mod common;

use std::process::Command;

use common::*;
use kiln_export::{
    ExportImage, export_docker_archive, export_oci_archive, import_archive, import_oci_layout_dir,
};

struct Exported {
    _src: TempStore,
    image: StoredImage,
    dir: tempfile::TempDir,
}

impl Exported {
    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }
}

/// Exports the test image as `oci.tar` and `docker.tar` under a temp dir.
fn export() -> Exported {
    let src = temp_store();
    let image = store_image(&src.store, &[busybox_layer(), small_layers().remove(0)]);
    let images = [ExportImage {
        manifest_digest: image.manifest.clone(),
        tags: vec!["docker.io/kiln-test/oci:v1".into()],
    }];
    let dir = tempfile::tempdir().unwrap();
    let oci = std::fs::File::create(dir.path().join("oci.tar")).unwrap();
    export_oci_archive(&src.store, &images, oci).unwrap();
    let docker = std::fs::File::create(dir.path().join("docker.tar")).unwrap();
    export_docker_archive(&src.store, &images, docker).unwrap();
    Exported {
        _src: src,
        image,
        dir,
    }
}

fn skopeo_json(args: &[&str]) -> serde_json::Value {
    require_tool("skopeo");
    let out = run(Command::new("skopeo").args(args));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn skopeo_inspects_the_oci_archive_by_tag() {
    let ex = export();
    let info = skopeo_json(&["inspect", &format!("oci-archive:{}:v1", ex.path("oci.tar"))]);
    assert_eq!(info["Digest"], ex.image.manifest.to_string());
    let layers: Vec<String> = ex
        .image
        .layer_blobs
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(info["Layers"], serde_json::json!(layers));
    assert_eq!(info["Architecture"], "amd64");
}

#[test]
fn skopeo_inspects_the_docker_archive() {
    let ex = export();
    let info = skopeo_json(&[
        "inspect",
        "--raw",
        "--config",
        &format!("docker-archive:{}", ex.path("docker.tar")),
    ]);
    let diff_ids: Vec<String> = ex.image.diff_ids.iter().map(ToString::to_string).collect();
    assert_eq!(info["rootfs"]["diff_ids"], serde_json::json!(diff_ids));
}

#[test]
fn skopeo_copies_and_kiln_imports_the_copies() {
    require_tool("skopeo");
    let ex = export();
    let src = format!("oci-archive:{}:v1", ex.path("oci.tar"));
    run(Command::new("skopeo").args(["copy", &src, &format!("oci:{}:copied", ex.path("layout"))]));
    let store = temp_store();
    let from_dir = import_oci_layout_dir(&store.store, &ex.dir.path().join("layout")).unwrap();
    assert_eq!(from_dir.len(), 1);
    assert_eq!(from_dir[0].tags, vec!["copied".to_string()]);
    assert_eq!(from_dir[0].manifest_digest, ex.image.manifest);

    // skopeo's docker-archive has `<hex>.tar` uncompressed layers.
    let dest = format!(
        "docker-archive:{}:kiln-test/skopeo:1",
        ex.path("skopeo-docker.tar")
    );
    run(Command::new("skopeo").args(["copy", &src, &dest]));
    let file = std::fs::File::open(ex.path("skopeo-docker.tar")).unwrap();
    let imported = import_archive(&store.store, file).unwrap();
    assert_eq!(imported.len(), 1);
    assert_eq!(
        imported[0].tags,
        vec!["docker.io/kiln-test/skopeo:1".to_string()]
    );
    assert_eq!(imported[0].config_digest, ex.image.config);
    assert_store_consistent(&store);
}

#[test]
fn umoci_unpacks_the_untarred_oci_archive() {
    require_tool("umoci");
    let ex = export();
    let layout = ex.dir.path().join("layout");
    std::fs::create_dir(&layout).unwrap();
    run(Command::new("tar").args(["-xf", &ex.path("oci.tar"), "-C", &layout.to_string_lossy()]));
    let bundle = ex.path("bundle");
    run(Command::new("umoci").args([
        "unpack",
        "--image",
        &format!("{}:v1", layout.to_string_lossy()),
        &bundle,
    ]));
    let rootfs = ex.dir.path().join("bundle/rootfs");
    assert_eq!(
        std::fs::read(rootfs.join("hello.txt")).unwrap(),
        b"hello from the base layer\n"
    );
    assert_eq!(
        std::fs::read(rootfs.join("bin/busybox")).unwrap(),
        std::fs::read("/bin/busybox").unwrap()
    );
}
