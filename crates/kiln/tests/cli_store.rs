//! The store commands on their own: import, images, tag, rmi, inspect, history, prune, system
//! df/check, load/save between kiln stores, and errors that must leave the store unchanged.

mod cli_store_util;

use std::path::Path;

use cli_store_util::{BUSYBOX_TAR, Kiln, cells, sh, sha256_file};
use serde_json::json;

/// Three significant digits, as `docker images` prints sizes between 1 and 10 MB.
fn megabytes(bytes: u64) -> String {
    assert!(
        (1_000_000..10_000_000).contains(&bytes),
        "{bytes} bytes is outside this helper's range"
    );
    let text = format!("{:.2}", bytes as f64 / 1e6);
    format!("{}MB", text.trim_end_matches('0').trim_end_matches('.'))
}

/// The size `docker images` reports for a layer (overlay2's `directory.Size`
/// of the unpacked layer), computed here straight from a plain tar's headers:
/// regular file bytes plus symlink target lengths; hard links (same inode),
/// directories, devices and whiteouts count nothing.
fn docker_layer_size(tar: &[u8]) -> u64 {
    let field = |h: &[u8], r: std::ops::Range<usize>| -> Vec<u8> {
        h[r].iter().copied().take_while(|&b| b != 0).collect()
    };
    let octal = |h: &[u8], r: std::ops::Range<usize>| -> u64 {
        let text = String::from_utf8(field(h, r)).unwrap();
        u64::from_str_radix(text.trim(), 8).unwrap()
    };
    let mut total = 0;
    let mut at = 0;
    while at + 512 <= tar.len() && tar[at..at + 512].iter().any(|&b| b != 0) {
        let h = &tar[at..at + 512];
        let size = octal(h, 124..136);
        let name = field(h, 0..100);
        let whiteout = name
            .rsplit(|&b| b == b'/')
            .find(|part| !part.is_empty())
            .is_some_and(|base| base.starts_with(b".wh."));
        match h[156] {
            b'0' | 0 | b'7' if !whiteout => total += size,
            b'2' => total += field(h, 157..257).len() as u64,
            b'1' | b'3' | b'4' | b'5' | b'6' => {}
            b'0' | 0 | b'7' => {}
            other => panic!("entry type {:?}: extend this helper", other as char),
        }
        at += 512 + size.div_ceil(512) as usize * 512;
    }
    total
}

#[test]
fn import_then_images_shows_docker_columns_and_size() {
    let k = Kiln::new();
    let id = k.import_busybox("lab/busybox:1");
    let out = k.ok(["images"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(
        cells(lines[0]),
        ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
    );
    let row = cells(lines[1]);
    let short = &id[7..19];
    assert_eq!(row[..3], ["lab/busybox", "1", short]);
    assert!(row[3].ends_with(" ago"), "{out}");
    // Docker's SIZE: the layer's unpacked content, not the stored blobs.
    let want = docker_layer_size(&std::fs::read(BUSYBOX_TAR).unwrap());
    assert_eq!(row[4], megabytes(want));
    assert_eq!(k.inspect("lab/busybox:1")["Size"], json!(want));
    assert_eq!(
        lines[0].find("IMAGE ID"),
        lines[1].find(short),
        "columns line up:\n{out}"
    );
    assert_eq!(k.ok(["image", "ls"]), out, "`image ls` is `images`");
}

#[test]
fn images_formats_filters_and_quiet() {
    let k = Kiln::new();
    let id = k.import_busybox("lab/busybox:1");
    k.ok(["tag", "lab/busybox:1", "other:2"]);
    assert_eq!(
        k.ok(["images", "--format", "{{.Repository}}:{{.Tag}}"]),
        "lab/busybox:1\nother:2\n"
    );
    assert_eq!(k.ok(["images", "-q"]), format!("{0}\n{0}\n", &id[7..19]));
    assert_eq!(
        k.ok(["images", "-q", "--no-trunc", "lab/busybox"]),
        format!("{id}\n")
    );
    assert_eq!(
        k.ok(["images", "-q", "--filter", "reference=oth*"])
            .lines()
            .count(),
        1
    );
    let json: serde_json::Value =
        serde_json::from_str(k.ok(["images", "--format", "json", "other"]).trim()).unwrap();
    assert_eq!(json["Repository"], "other");
    assert_eq!(json["ID"], &id[7..19]);
    let digests = k.ok(["images", "--digests"]);
    assert_eq!(cells(digests.lines().next().unwrap())[2], "DIGEST");
    assert!(
        digests.lines().nth(1).unwrap().contains(" sha256:"),
        "{digests}"
    );
    assert!(
        k.fails(["images", "--filter", "bogus=1"])
            .contains("invalid filter 'bogus=1'")
    );
}

#[test]
fn inspect_reports_config_layers_and_templates() {
    let k = Kiln::new();
    let id = k.import_busybox("lab/busybox:1");
    let doc = k.inspect("lab/busybox:1");
    assert_eq!(doc["Id"], id);
    assert_eq!(doc["RepoTags"], json!(["lab/busybox:1"]));
    assert_eq!(doc["Config"]["Cmd"], json!(["sh"]));
    assert_eq!(
        doc["Config"]["Env"],
        json!(["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"])
    );
    assert_eq!(doc["Os"], "linux");
    assert_eq!(doc["Comment"], "Imported from -");
    assert_eq!(doc["RootFS"]["Type"], "layers");
    assert_eq!(
        doc["RootFS"]["Layers"],
        json!([sha256_file(Path::new(BUSYBOX_TAR))])
    );
    assert_eq!(k.inspect(&id[7..19])["Id"], id, "found by short ID");
    assert_eq!(
        k.ok(["inspect", "-f", "{{.Id}}", "lab/busybox:1"]),
        format!("{id}\n")
    );
    let config: serde_json::Value = serde_json::from_str(&k.ok([
        "image",
        "inspect",
        "--format",
        "{{json .Config}}",
        "lab/busybox:1",
    ]))
    .unwrap();
    assert_eq!(config["Cmd"], json!(["sh"]));
}

#[test]
fn tag_and_rmi_print_what_docker_prints() {
    let k = Kiln::new();
    let id = k.import_busybox("lab/busybox:1");
    assert_eq!(k.ok(["tag", "lab/busybox:1", "other/box:2"]), "");
    let err = k.fails(["rmi", &id[7..19]]);
    assert!(err.contains("must be forced"), "{err}");
    assert_eq!(k.ok(["rmi", "other/box:2"]), "Untagged: other/box:2\n");
    assert_eq!(
        k.ok(["rmi", "lab/busybox:1"]),
        format!("Untagged: lab/busybox:1\nDeleted: {id}\n")
    );
    assert_eq!(k.ok(["images", "-a", "-q"]), "");
    let blobs = std::fs::read_dir(k.path().join("content/blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(blobs, 0, "rmi frees the blobs of the deleted image");
    let id = k.import_busybox("lab/busybox:1");
    k.ok(["tag", "lab/busybox:1", "other/box:2"]);
    let out = k.ok(["image", "rm", "-f", &id[7..19]]);
    assert_eq!(
        out.lines().filter(|l| l.starts_with("Untagged: ")).count(),
        2,
        "{out}"
    );
    assert!(out.ends_with(&format!("Deleted: {id}\n")), "{out}");
}

#[test]
fn history_lists_steps_with_sizes_and_comments() {
    let k = Kiln::new();
    let id = k.import_busybox("lab/busybox:1");
    let out = k.ok(["history", "lab/busybox:1"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        cells(lines[0]),
        ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]
    );
    assert_eq!(lines.len(), 2, "{out}");
    let row = cells(lines[1]);
    assert_eq!(row[0], &id[7..19]);
    assert!(row[1].ends_with(" ago"), "{out}");
    let want = docker_layer_size(&std::fs::read(BUSYBOX_TAR).unwrap());
    assert_eq!(row[2], megabytes(want), "{out}");
    assert_eq!(row[3], "Imported from -");
    assert_eq!(
        k.ok(["history", "-q", "lab/busybox:1"]),
        format!("{}\n", &id[7..19])
    );
    assert_eq!(
        k.ok(["image", "history", "-q", "--no-trunc", "lab/busybox:1"]),
        format!("{id}\n")
    );
}

#[test]
fn import_message_becomes_the_comment() {
    let k = Kiln::new();
    let id = k.ok([
        "import",
        "-m",
        "from the release tarball",
        BUSYBOX_TAR,
        "msg:1",
    ]);
    let doc = k.inspect("msg:1");
    assert_eq!(doc["Id"], id.trim());
    assert_eq!(doc["Comment"], "from the release tarball");
    assert!(
        k.ok(["history", "msg:1"])
            .contains("from the release tarball")
    );
    assert_eq!(
        k.ok(["images", "-a", "-q"]).lines().count(),
        1,
        "no leftover image without the message"
    );
}

/// Imports busybox untagged with a label; returns the ID.
fn import_labelled(k: &Kiln, label: &str) -> String {
    k.ok(["import", "--change", &format!("LABEL {label}"), BUSYBOX_TAR])
        .trim()
        .to_owned()
}

#[test]
fn prune_by_label_removes_only_matching_dangling_images() {
    let k = Kiln::new();
    let kept = k.import_busybox("keep:1");
    let builder = import_labelled(&k, "stage=builder");
    let other = import_labelled(&k, "stage=other");
    let before = k.snapshot();
    let err = k.fails(["image", "prune", "--filter", "label=stage=builder"]);
    assert!(
        err.contains("not a terminal") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(k.snapshot(), before, "refused prune changes nothing");
    let out = k.ok(["image", "prune", "-f", "--filter", "label=stage=builder"]);
    let expected = format!("Deleted Images:\ndeleted: {builder}\n\nTotal reclaimed space: ");
    assert!(out.starts_with(&expected), "{out}");
    assert!(out.trim_end().ends_with('B'), "{out}");
    let left = k.ok(["images", "-a", "-q", "--no-trunc"]);
    assert!(
        left.contains(&kept) && left.contains(&other) && !left.contains(&builder),
        "{left}"
    );
    let out = k.ok(["image", "prune", "-a", "-f"]);
    assert!(
        out.contains("untagged: keep:1\n") && out.contains(&format!("deleted: {kept}\n")),
        "{out}"
    );
    assert_eq!(k.ok(["images", "-a", "-q"]), "");
    assert_eq!(
        k.ok(["image", "prune", "-f"]),
        "Total reclaimed space: 0B\n"
    );
}

#[test]
fn prune_until_keeps_images_newer_than_the_cutoff() {
    let k = Kiln::new();
    let id = import_labelled(&k, "stage=builder");
    let out = k.ok(["image", "prune", "-f", "--filter", "until=24h"]);
    assert_eq!(out, "Total reclaimed space: 0B\n");
    assert_eq!(k.ok(["images", "-q", "--no-trunc"]), format!("{id}\n"));
    let out = k.ok([
        "image",
        "prune",
        "-f",
        "--filter",
        "until=2100-01-01T00:00:00Z",
    ]);
    assert!(out.contains(&format!("deleted: {id}")), "{out}");
    let err = k.fails(["image", "prune", "-f", "--filter", "dangling=false"]);
    assert!(err.contains("invalid filter 'dangling=false'"), "{err}");
}

#[test]
fn system_df_and_check() {
    let k = Kiln::new();
    k.import_busybox("keep:1");
    import_labelled(&k, "stage=builder");
    let out = k.ok(["system", "df"]);
    let lines: Vec<Vec<String>> = out.lines().map(cells).collect();
    assert_eq!(lines[0], ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]);
    assert_eq!(lines[1][..3], ["Images", "2", "1"]);
    assert!(lines[1][4].ends_with("%)"), "{out}");
    assert_eq!(lines[2][0], "Build Cache");
    assert_eq!(lines[3][0], "Unpacked layers");
    let verbose = k.ok(["system", "df", "-v"]);
    assert!(
        verbose.contains("Images space usage:") && verbose.contains("\nkeep "),
        "{verbose}"
    );
    assert!(k.ok(["system", "check"]).contains("status: ok"));
}

#[test]
fn check_finds_a_corrupt_blob_and_repair_removes_the_image() {
    let k = Kiln::new();
    k.import_busybox("lab/busybox:1");
    let layer = k.manifest("lab/busybox:1")["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    std::fs::write(k.blob_path(&layer), b"not the layer").unwrap();
    let out = k.cmd(["system", "check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("corrupt blob {layer}")));
    let repaired = k.ok(["system", "check", "--repair"]);
    assert!(repaired.contains("removed image"), "{repaired}");
    assert!(k.ok(["system", "check"]).contains("status: ok"));
    assert_eq!(k.ok(["images", "-a", "-q"]), "");
}

#[test]
fn save_and_load_between_stores_keep_the_image_id() {
    let src = Kiln::new();
    let id = src.import_busybox("lab/busybox:1");
    let dir = tempfile::tempdir().unwrap();
    let docker_tar = dir.path().join("busybox.tar");
    src.ok(["save", "-o", docker_tar.to_str().unwrap(), "lab/busybox:1"]);
    let dst = Kiln::new();
    let out = dst
        .cmd(["load"])
        .pipe_stdin(&docker_tar)
        .unwrap()
        .output()
        .unwrap();
    cli_store_util::assert_success(&out);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Loaded image: lab/busybox:1\n"
    );
    assert_eq!(dst.inspect("lab/busybox:1")["Id"], id);

    let oci_tar = dir.path().join("oci.tar");
    src.ok([
        "save",
        "--format",
        "oci",
        "-o",
        oci_tar.to_str().unwrap(),
        &id[7..19],
    ]);
    let layout = dir.path().join("layout");
    sh(&format!(
        "mkdir '{0}' && tar -C '{0}' -xf '{1}'",
        layout.display(),
        oci_tar.display()
    ));
    let by_dir = Kiln::new();
    assert_eq!(
        by_dir.ok(["load", "-q", "-i", layout.to_str().unwrap()]),
        format!("Loaded image ID: {id}\n")
    );
    assert_eq!(by_dir.ok(["images", "-q", "--no-trunc"]), format!("{id}\n"));
}

#[test]
fn save_refuses_to_write_to_a_terminal() {
    let k = Kiln::new();
    k.import_busybox("lab/busybox:1");
    let kiln = env!("CARGO_BIN_EXE_kiln");
    let script = format!("{kiln} --root '{}' save lab/busybox:1", k.path().display());
    let out = std::process::Command::new(cli_store_util::require("script"))
        .args(["-qec", &script, "/dev/null"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("refusing to write an image archive to a terminal")
    );
}

#[test]
fn errors_are_clear_and_leave_the_store_unchanged() {
    let k = Kiln::new();
    k.import_busybox("lab/busybox:1");
    let before = k.snapshot();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.tar");
    let out_arg = out.to_str().unwrap();
    for args in [
        vec!["inspect", "nope:1"],
        vec!["rmi", "nope:1"],
        vec!["tag", "nope:1", "x:1"],
        vec!["history", "nope:1"],
        vec!["save", "-o", out_arg, "nope:1"],
    ] {
        let err = k.fails(&args);
        assert!(err.contains("No such image: nope:1"), "{args:?}: {err}");
    }
    assert!(!out.exists(), "a failed save leaves no file");

    let garbage = dir.path().join("garbage.tar");
    std::fs::write(&garbage, vec![b'x'; 4096]).unwrap();
    let err = k.fails(["load", "-i", garbage.to_str().unwrap()]);
    assert!(
        err.contains(&format!("loading images from {}", garbage.display())),
        "{err}"
    );

    let good = dir.path().join("good.tar");
    k.ok(["save", "-o", good.to_str().unwrap(), "lab/busybox:1"]);
    let bytes = std::fs::read(&good).unwrap();
    let cut = dir.path().join("cut.tar");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let err = k.fails(["load", "-i", cut.to_str().unwrap()]);
    assert!(
        err.contains("truncated") || err.contains("missing from the archive"),
        "{err}"
    );

    let err = k.fails(["tag", "lab/busybox:1", "Bad/Name:1"]);
    assert!(err.contains("repository name must be lowercase"), "{err}");
    let err = k.fails(["import", BUSYBOX_TAR, "no spaces:1"]);
    assert!(err.contains("invalid reference \"no spaces:1\""), "{err}");
    let err = k.fails(["import", "/nonexistent/rootfs.tar"]);
    assert!(err.contains("opening /nonexistent/rootfs.tar"), "{err}");
    assert_eq!(k.snapshot(), before);
}

/// Runs `kiln ARGS` on a pseudo-terminal (util-linux `script`), typing `input`.
fn on_tty(k: &Kiln, args: &str, input: &str) -> (bool, String) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let kiln = env!("CARGO_BIN_EXE_kiln");
    let line = format!("{kiln} --root '{}' {args}", k.path().display());
    let mut child = Command::new(cli_store_util::require("script"))
        .args(["-qec", &line, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn prune_asks_on_a_terminal_and_load_and_import_refuse_one() {
    let k = Kiln::new();
    let id = import_labelled(&k, "stage=builder");
    let (ok, out) = on_tty(&k, "image prune", "n\n");
    assert!(
        ok && out.contains("Are you sure you want to continue? [y/N]"),
        "{out}"
    );
    assert_eq!(
        k.ok(["images", "-q", "--no-trunc"]),
        format!("{id}\n"),
        "answering no keeps the image"
    );
    let (ok, out) = on_tty(&k, "image prune", "y\n");
    assert!(ok && out.contains(&format!("deleted: {id}")), "{out}");
    assert_eq!(k.ok(["images", "-a", "-q"]), "");
    let (ok, out) = on_tty(&k, "load", "");
    assert!(!ok && out.contains("stdin is a terminal"), "{out}");
    let (ok, out) = on_tty(&k, "import -", "");
    assert!(!ok && out.contains("stdin is a terminal"), "{out}");
}

#[test]
fn load_over_an_existing_name_says_the_old_image_lost_it() {
    let src = Kiln::new();
    let new_id = src.import_busybox("lab/busybox:1");
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("new.tar");
    src.ok(["save", "-o", archive.to_str().unwrap(), "lab/busybox:1"]);
    let dst = Kiln::new();
    let old_id = dst.import_busybox("lab/busybox:1");
    let out = dst.ok(["load", "-i", archive.to_str().unwrap()]);
    assert_eq!(
        out,
        format!(
            "The image lab/busybox:1 already exists; the old one ({old_id}) is now untagged\nLoaded image: lab/busybox:1\n"
        )
    );
    assert_eq!(dst.inspect("lab/busybox:1")["Id"], new_id);
    assert_eq!(
        dst.ok(["images", "-q", "--no-trunc", "--filter", "dangling=true"]),
        format!("{old_id}\n")
    );
}

#[test]
fn gzip_archives_and_tarballs_are_read_from_stdin() {
    let k = Kiln::new();
    let plain = k.import_busybox("lab/busybox:1");
    let dir = tempfile::tempdir().unwrap();
    let rootfs_gz = dir.path().join("rootfs.tar.gz");
    sh(&format!(
        "gzip -c '{BUSYBOX_TAR}' > '{}'",
        rootfs_gz.display()
    ));
    let out = k
        .cmd(["import", "-", "gz:1"])
        .pipe_stdin(&rootfs_gz)
        .unwrap()
        .output()
        .unwrap();
    cli_store_util::assert_success(&out);
    let layers = |image: &str| k.inspect(image)["RootFS"]["Layers"].clone();
    assert_eq!(
        layers("gz:1"),
        layers(&plain),
        "same diff ID as the plain tarball"
    );

    let archive_gz = dir.path().join("image.tar.gz");
    let kiln = env!("CARGO_BIN_EXE_kiln");
    sh(&format!(
        "{kiln} --root '{}' save gz:1 | gzip > '{}'",
        k.path().display(),
        archive_gz.display()
    ));
    let dst = Kiln::new();
    let loaded = dst
        .cmd(["image", "load"])
        .pipe_stdin(&archive_gz)
        .unwrap()
        .output()
        .unwrap();
    cli_store_util::assert_success(&loaded);
    assert_eq!(
        String::from_utf8_lossy(&loaded.stdout),
        "Loaded image: gz:1\n"
    );
    assert_eq!(dst.inspect("gz:1")["Id"], k.inspect("gz:1")["Id"]);
}

#[test]
fn images_since_and_before_compare_creation_times() {
    let k = Kiln::new();
    let first = k.import_busybox("first:1");
    let second = k.import_busybox("second:1");
    let ids = |filter: &str| k.ok(["images", "-q", "--no-trunc", "--filter", filter]);
    assert_eq!(ids("since=first:1"), format!("{second}\n"));
    assert_eq!(ids("before=second:1"), format!("{first}\n"));
    let err = k.fails(["images", "--filter", "since=nope:1"]);
    assert!(
        err.contains("filter since=nope:1: No such image: nope:1"),
        "{err}"
    );
}
