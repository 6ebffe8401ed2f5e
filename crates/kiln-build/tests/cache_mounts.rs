//! Cache mounts under concurrent builds on one store (each with its own `Store` handle, as two
//! `kiln build` processes have): `sharing=locked` serialises its users, `sharing=private`
//! gives each concurrent user its own directory.

mod common;

use std::io::Read as _;
use std::path::{Path, PathBuf};

use common::{import_busybox, request, temp_store};
use kiln_build::{BuildRequest, BuildResult};
use kiln_store::Store;

/// Builds per thread in the locked stress test.
const BUILDS: usize = 3;

fn context(dir: &Path, name: &str, dockerfile: &str) -> PathBuf {
    let ctx = dir.join(name);
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    ctx
}

fn build_with(root: &Path, ctx: &Path, args: &[(&str, String)]) -> BuildResult {
    let store = Store::open(root).unwrap();
    let mut req: BuildRequest = request(ctx, None, "t/mounts:1");
    for (k, v) in args {
        req.build_args.insert((*k).into(), v.clone());
    }
    let (result, rec) = common::build(&store, &req);
    result.unwrap_or_else(|e| panic!("build failed: {e}\n{}", rec.output()))
}

/// The contents of `path` in the image's last layer.
fn file_in_top_layer(store: &Store, image: &BuildResult, path: &str) -> String {
    let layers = store.image_layers(&image.image.id).unwrap();
    let top = layers.last().unwrap();
    let blob = store.content().open_blob(&top.digest).unwrap();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(blob));
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path_bytes().as_ref() == path.as_bytes() {
            let mut text = String::new();
            entry.read_to_string(&mut text).unwrap();
            return text;
        }
    }
    panic!("{path} not in the top layer");
}

#[test]
fn locked_cache_mount_serialises_concurrent_builds() {
    let (tmp, store) = temp_store();
    import_busybox(&store);
    // Read, pause, write: two users at once would lose an increment.
    let ctx = context(
        tmp.path(),
        "count",
        "FROM lab/busybox:1\nARG RUN_ID\n\
         RUN --mount=type=cache,id=counter,sharing=locked,target=/c \
         v=$(cat /c/n 2>/dev/null || echo 0) && sleep 0.4 && echo $((v + 1)) > /c/n \
         && echo $RUN_ID > /dev/null\n",
    );
    let root = store.root().to_path_buf();
    std::thread::scope(|s| {
        for thread in 0..2 {
            let (root, ctx) = (&root, &ctx);
            s.spawn(move || {
                for n in 0..BUILDS {
                    build_with(root, ctx, &[("RUN_ID", format!("{thread}-{n}"))]);
                }
            });
        }
    });
    let read = context(
        tmp.path(),
        "read",
        "FROM lab/busybox:1\n\
         RUN --mount=type=cache,id=counter,sharing=locked,target=/c cp /c/n /count\n",
    );
    let result = build_with(&root, &read, &[]);
    let count = file_in_top_layer(&store, &result, "count");
    assert_eq!(count.trim(), (2 * BUILDS).to_string(), "lost updates");
}

#[test]
fn private_cache_mount_gives_concurrent_users_their_own_directory() {
    let (tmp, store) = temp_store();
    import_busybox(&store);
    // Both RUNs wait for each other through a shared mount, so they surely overlap; each then
    // checks its private mount holds nothing of the other's.
    let ctx = context(
        tmp.path(),
        "private",
        "FROM lab/busybox:1\nARG ME\nARG OTHER\n\
         RUN --mount=type=cache,id=meet,target=/meet \
         --mount=type=cache,id=mine,sharing=private,target=/p \
         touch /p/$ME /meet/$ME && i=0 \
         && while [ ! -e /meet/$OTHER ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i + 1)); done \
         && [ -e /meet/$OTHER ] && sleep 0.5 && ls /p > /seen\n",
    );
    let root = store.root().to_path_buf();
    let seen: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = [("a", "b"), ("b", "a")]
            .into_iter()
            .map(|(me, other)| {
                let (root, ctx) = (&root, &ctx);
                s.spawn(move || {
                    let args = [("ME", me.to_string()), ("OTHER", other.to_string())];
                    let result = build_with(root, ctx, &args);
                    file_in_top_layer(&Store::open(root).unwrap(), &result, "seen")
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        seen,
        ["a\n", "b\n"],
        "each private mount holds only its user's file"
    );
}
