//! Build options behind `kiln build`'s buildx flags, through the library with runc: secrets,
//! platforms, and the target's files as a tar.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{import_busybox, request, temp_store};
use kiln_build::{BuildError, SecretSource};

fn write_context(dir: &Path, dockerfile: &str) -> std::path::PathBuf {
    let ctx = dir.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    ctx
}

/// Regular files of a plain tar, by name.
fn tar_files(tar: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut archive = tar::Archive::new(tar);
    let mut out = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = String::from_utf8(entry.path_bytes().to_vec()).unwrap();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        out.insert(name, data);
    }
    out
}

#[test]
fn secret_file_and_env_under_runc_stay_out_of_the_result() {
    let (tmp, store) = temp_store();
    import_busybox(&store);
    let ctx = write_context(
        tmp.path(),
        "FROM lab/busybox:1\n\
         RUN --mount=type=secret,id=s,target=/deep/dir/s wc -c < /deep/dir/s > /len || echo none > /len\n\
         RUN --mount=type=secret,id=s,env=S,required=true echo ${#S} > /envlen\n",
    );
    let secret = tmp.path().join("secret");
    std::fs::write(&secret, "0123456789").unwrap();
    let mut req = request(&ctx, None, "t/secret:1");
    req.secrets = BTreeMap::from([("s".into(), SecretSource::File(secret))]);
    let (result, _) = common::build(&store, &req);
    let image = result.unwrap().image;
    let mut tar = Vec::new();
    kiln_build::export_rootfs_tar(&store, &image, &mut tar).unwrap();
    let files = tar_files(&tar);
    assert_eq!(files["len"], b"10\n");
    assert_eq!(files["envlen"], b"10\n");
    assert!(
        files.contains_key("bin/sh"),
        "the base's files are there too"
    );
    assert!(
        !files.keys().any(|n| n.starts_with("deep")),
        "{:?}",
        files.keys()
    );
    // Without the secret, the required mount fails before the command runs.
    req.secrets.clear();
    req.no_cache = true;
    let (result, _) = common::build(&store, &req);
    let err = result.unwrap_err().to_string();
    assert!(err.contains("secret \"s\" not found"), "{err}");
}

#[test]
fn foreign_platforms_fail_before_any_step() {
    let (tmp, store) = temp_store();
    import_busybox(&store);
    let ctx = write_context(tmp.path(), "FROM lab/busybox:1\nRUN true\n");
    let mut req = request(&ctx, None, "t/plat:1");
    req.platform = Some("linux/s390x".into());
    let (result, rec) = common::build(&store, &req);
    match result {
        Err(BuildError::Invalid(msg)) => assert!(
            msg.starts_with("kiln cannot build for linux/s390x on linux/amd64: no emulation"),
            "{msg}"
        ),
        other => panic!("expected a platform error, got {other:?}"),
    }
    assert!(rec.steps().is_empty(), "steps ran: {:?}", rec.steps());
}
