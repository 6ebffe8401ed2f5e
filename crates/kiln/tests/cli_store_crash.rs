//! `kiln load` of a big archive: killed with SIGKILL half-way, then checked and retried; and two
//! loads of the same archive at the same time.

mod cli_store_util;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use cli_store_util::{Kiln, sh};

/// Builds (once per target dir) an OCI archive of a ~200 MB image of random, incompressible
/// files in two layers (the first is committed while the second still streams), with the shell
/// tools alone so that making it does not depend on kiln.
fn big_archive() -> PathBuf {
    static ARCHIVE: OnceLock<PathBuf> = OnceLock::new();
    ARCHIVE
        .get_or_init(|| {
            let dest =
                PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kiln-big-random-oci-2-layers.tar");
            if !dest.is_file() {
                sh(&MAKE_ARCHIVE.replace("@DEST@", dest.to_str().expect("utf-8 path")));
            }
            dest
        })
        .clone()
}

const MAKE_ARCHIVE: &str = r#"
W=$(mktemp -d "@DEST@.work.XXXXXX"); B=$W/layout/blobs/sha256
mkdir -p "$W/a" "$W/b" "$B"
for i in 1 2; do head -c 50000000 /dev/urandom > "$W/a/data$i"; head -c 50000000 /dev/urandom > "$W/b/more$i"; done
put() { d=$(sha256sum "$W/blob" | cut -d' ' -f1); s=$(stat -c %s "$W/blob"); mv "$W/blob" "$B/$d"; }
layer() {
  tar --numeric-owner -C "$W/$1" -cf "$W/layer.tar" .
  diff=$(sha256sum "$W/layer.tar" | cut -d' ' -f1)
  gzip -1 -n -c "$W/layer.tar" > "$W/blob"; rm "$W/layer.tar"; put
  diffs="$diffs${diffs:+,}\"sha256:$diff\""
  layers="$layers${layers:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$d\",\"size\":$s}"
}
diffs=; layers=; layer a; layer b
printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":[%s]}}' "$diffs" > "$W/blob"
put
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s]}' "$d" "$s" "$layers" > "$W/blob"
put
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"docker.io/big/random:1","org.opencontainers.image.ref.name":"1"}}]}' "$d" "$s" > "$W/layout/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' > "$W/layout/oci-layout"
tar -C "$W/layout" -cf "$W/archive.tar" oci-layout index.json blobs
mv "$W/archive.tar" "@DEST@"
rm -rf "$W"
"#;

fn spawn_load(k: &Kiln, archive: &PathBuf) -> Child {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(k.path())
        .args(["load", "-i"])
        .arg(archive)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning kiln load")
}

/// Starts `kiln load`, SIGKILLs it after `delay`, then checks the store is consistent.
fn kill_load_after(k: &Kiln, archive: &PathBuf, delay: Duration) {
    let mut load = spawn_load(k, archive);
    std::thread::sleep(delay);
    assert!(
        load.try_wait().expect("polling kiln load").is_none(),
        "kiln load finished within {delay:?}: the archive is too small to interrupt it"
    );
    load.kill().expect("SIGKILL kiln load");
    load.wait().expect("reaping kiln load");
    let check = k.ok(["system", "check"]);
    assert!(check.contains("status: ok"), "{check}");
    assert_eq!(
        k.ok(["images", "-a", "-q"]),
        "",
        "no half-loaded image is listed"
    );
    let repaired = k.ok(["system", "check", "--repair"]);
    assert!(repaired.contains("status: ok"), "{repaired}");
    let after = k.ok(["system", "check"]);
    assert!(
        !after.contains("orphan"),
        "repair removed the leftovers:\n{after}"
    );
}

#[test]
fn load_killed_midway_leaves_a_consistent_store_and_a_retry_succeeds() {
    let archive = big_archive();
    let k = Kiln::new();
    // Once while the first layer streams, once later (by then the first layer is usually committed).
    kill_load_after(&k, &archive, Duration::from_millis(1500));
    kill_load_after(&k, &archive, Duration::from_secs(6));
    assert_eq!(
        k.ok(["load", "-i", archive.to_str().unwrap()]),
        "Loaded image: big/random:1\n"
    );
    assert_eq!(
        k.ok(["images", "--format", "{{.Repository}}:{{.Tag}} {{.Size}}"]),
        "big/random:1 200MB\n"
    );
    let check = k.ok(["system", "check"]);
    assert!(check.contains("status: ok"), "{check}");
}

#[test]
fn two_loads_of_one_archive_at_once_both_succeed() {
    let archive = big_archive();
    let k = Kiln::new();
    let loads = [spawn_load(&k, &archive), spawn_load(&k, &archive)];
    for load in loads {
        let out = load.wait_with_output().expect("waiting for kiln load");
        cli_store_util::assert_success(&out);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "Loaded image: big/random:1\n"
        );
    }
    assert_eq!(
        k.ok(["images", "--format", "{{.Repository}}:{{.Tag}}"]),
        "big/random:1\n"
    );
    let check = k.ok(["system", "check"]);
    assert!(
        check.contains("status: ok") && !check.contains("orphan"),
        "{check}"
    );
}

#[test]
fn gc_while_loading_keeps_the_blobs_being_written() {
    let archive = big_archive();
    let k = Kiln::new();
    let mut load = spawn_load(&k, &archive);
    let mut sweeps = 0;
    while load.try_wait().expect("polling kiln load").is_none() {
        // Dangling-only prune: it runs GC but leaves the loaded image alone once it is there.
        k.ok(["image", "prune", "-f"]);
        sweeps += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        sweeps > 1,
        "the load ended before GC could run alongside it"
    );
    let out = load.wait_with_output().expect("waiting for kiln load");
    cli_store_util::assert_success(&out);
    assert_eq!(
        k.ok(["images", "--format", "{{.Repository}}:{{.Tag}}"]),
        "big/random:1\n"
    );
    let check = k.ok(["system", "check"]);
    assert!(check.contains("status: ok"), "{check}");
}
