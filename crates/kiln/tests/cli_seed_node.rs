//! The tutorials' Node.js workflow with kiln in place of docker, word for word where a docker
//! command has a kiln twin: `build -t`, `images` to compare sizes, `image prune --filter
//! label=stage=builder`, then the image runs under docker. `npm install` fetches from the npm
//! registry over HTTPS inside RUN (the base trusts this machine's CAs), and the Dockerfile's
//! cache-friendly order pays off: editing a source file leaves `npm install` cached.

mod cli_store_util;

use std::path::{Path, PathBuf};

use cli_store_util::{DockerImage, Kiln, assert_success, cells, require_docker, unique_name};

/// The node rootfs `scripts/make-node-base.sh` makes (scripts/setup.sh runs it).
fn node_tar() -> PathBuf {
    let bases = std::env::var("KILN_TEST_BASES").unwrap_or("/var/cache/kiln-test/bases".into());
    let tar = Path::new(&bases).join("node.tar");
    assert!(
        tar.is_file(),
        "{} missing: run scripts/setup.sh",
        tar.display()
    );
    tar
}

fn import_node(kiln: &Kiln) {
    kiln.ok([
        "import",
        node_tar().to_str().unwrap(),
        "lab/node:20",
        "--change",
        r#"CMD ["node"]"#,
        "--change",
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "--change",
        "ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt",
    ]);
}

/// A copy of `examples/node`, so the test can edit its sources.
fn example_copy(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/node");
    let ctx = dir.join("node");
    cli_store_util::run("cp", &["-r", src.to_str().unwrap(), ctx.to_str().unwrap()]);
    ctx
}

/// `kiln build -t TAG CTX`; returns `(stage step, cached)` for every step.
fn build(kiln: &Kiln, tag: &str, ctx: &Path) -> Vec<(String, bool)> {
    let meta = kiln.path().join("meta.json");
    kiln.ok([
        "build",
        "--progress",
        "plain",
        "-t",
        tag,
        "--metadata-file",
        meta.to_str().unwrap(),
        ctx.to_str().unwrap(),
    ]);
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    cli_store_util::metadata_steps(&doc)
}

fn cached(steps: &[(String, bool)], step: &str) -> bool {
    steps
        .iter()
        .find(|(name, _)| name == step)
        .unwrap_or_else(|| panic!("no step {step:?} in {steps:?}"))
        .1
}

/// `docker run --rm IMAGE ARGS` of an image `kiln save` handed to `docker load`.
fn docker_run(kiln: &Kiln, image: &str, args: &[&str]) -> String {
    let archive = kiln.path().join("image.tar");
    kiln.ok(["save", "-o", archive.to_str().unwrap(), image]);
    cli_store_util::run("docker", &["load", "-i", archive.to_str().unwrap()]);
    let mut cmd = std::process::Command::new("docker");
    cmd.args(["run", "--rm", image]).args(args);
    let out = cmd.output().expect("running docker run");
    assert_success(&out);
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn node_tutorial_workflow_builds_caches_prunes_and_runs() {
    require_docker();
    let kiln = Kiln::new();
    import_node(&kiln);
    let ctx = example_copy(kiln.path());
    let tag = format!("{}:1", unique_name("node-seed"));
    let _cleanup = DockerImage(tag.clone());

    let first = build(&kiln, &tag, &ctx);
    assert!(
        first
            .iter()
            .all(|(name, c)| !c || name.contains("FROM") || name.contains("WORKDIR"))
    );

    // `docker images`: the final image and, with -a, the builder stage beside it.
    let listing = kiln.ok(["images", "-a"]);
    let rows: Vec<Vec<String>> = listing.lines().skip(1).map(cells).collect();
    assert!(rows.iter().any(|r| tag.starts_with(&r[0])), "{listing}");
    assert!(
        rows.iter().any(|r| r[0] == "<none>"),
        "no builder image:\n{listing}"
    );
    kiln.ok(["image", "prune", "-f", "--filter", "label=stage=builder"]);
    let listing = kiln.ok(["images", "-a"]);
    assert!(
        !listing.contains("<none>"),
        "builder not pruned:\n{listing}"
    );

    let out = docker_run(&kiln, &tag, &[]);
    assert!(out.contains("is-number(42) = true"), "{out}");
    // Production dependencies only: the devDependency stayed in the builder stage.
    let modules = docker_run(&kiln, &tag, &["ls", "node_modules"]);
    assert_eq!(
        modules.split_whitespace().collect::<Vec<_>>(),
        ["is-number"]
    );

    std::fs::write(
        ctx.join("src/main.js"),
        "console.log(`edited: ${require(\"is-number\")(\"x\")}`);\n",
    )
    .unwrap();
    let second = build(&kiln, &tag, &ctx);
    assert!(cached(&second, "build RUN npm install"), "{second:?}");
    assert!(!cached(&second, "build RUN npm run build"), "{second:?}");
    let out = docker_run(&kiln, &tag, &[]);
    assert!(out.contains("edited: false"), "{out}");
}
