//! `kiln pull`, `push`, `login`, `logout` and `build --pull/--push` against a real
//! `docker-registry` on a free 127.0.0.1 port, checked with skopeo and docker.
//! These tests fail (never skip) when a tool or the docker daemon is missing.

mod cli_store_util;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use cli_store_util::{
    DockerImage, Kiln, assert_success, require, require_docker, run, unique_name,
};

/// A running `docker-registry serve`, killed on drop (adapted from kiln-registry's fixtures).
struct Registry {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Registry {
    /// Anonymous access, plain HTTP.
    fn plain() -> Self {
        Self::start(None)
    }

    /// Basic auth for one user, from an htpasswd file made with `htpasswd -Bbn`.
    fn htpasswd(user: &str, password: &str) -> Self {
        Self::start(Some((user, password)))
    }

    fn start(user: Option<(&str, &str)>) -> Self {
        require("docker-registry");
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let auth = user.map_or(String::new(), |(user, password)| {
            let file = write_htpasswd(dir.path(), user, password);
            format!(
                "auth:\n  htpasswd:\n    realm: kiln-test\n    path: {}\n",
                file.display()
            )
        });
        let config = dir.path().join("config.yml");
        let text = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n\
             {auth}http:\n  addr: 127.0.0.1:{port}\n  secret: kiln-test-secret\n",
            dir.path().join("storage").display()
        );
        std::fs::write(&config, text).expect("writing the registry config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawning docker-registry");
        let mut reg = Self { child, port, dir };
        reg.wait_ready();
        reg
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn image(&self, repo_tag: &str) -> String {
        format!("{}/{repo_tag}", self.host())
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(self.dir.path().join("registry.log"));
                panic!("docker-registry exited with {status}: {log:?}");
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "docker-registry did not listen on port {} in 15s",
            self.port
        );
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// A bcrypt htpasswd file made with apache2-utils' `htpasswd -Bbn`.
fn write_htpasswd(dir: &Path, user: &str, password: &str) -> PathBuf {
    require("htpasswd");
    let out = Command::new("htpasswd")
        .args(["-Bbn", user, password])
        .output()
        .expect("running htpasswd");
    assert_success(&out);
    let path = dir.join("htpasswd");
    std::fs::write(&path, out.stdout).expect("writing htpasswd");
    path
}

/// A build context holding only `dockerfile`.
fn context(dockerfile: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).expect("writing Dockerfile");
    dir
}

/// Runs `kiln ARGS` in `k`'s store, expecting success; returns (stdout, stderr).
fn kiln_ok(k: &Kiln, args: &[&str]) -> (String, String) {
    let out = k.cmd(args).output().expect("running kiln");
    assert_success(&out);
    (
        String::from_utf8(out.stdout).expect("utf-8 stdout"),
        String::from_utf8(out.stderr).expect("utf-8 stderr"),
    )
}

/// The digest in `kiln push`'s `TAG: digest: sha256:… size: N` line.
fn pushed_digest(stdout: &str, tag: &str) -> String {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&format!("{tag}: digest: sha256:")))
        .unwrap_or_else(|| panic!("no digest line in push output:\n{stdout}"));
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields.len(), 5, "{line}");
    assert!(fields[4].parse::<u64>().is_ok_and(|n| n > 0), "{line}");
    fields[2].to_string()
}

/// A store with busybox imported and a one-step image built on it as `name`.
fn built_image(name: &str) -> Kiln {
    let k = Kiln::new();
    k.import_busybox("lab/busybox:1");
    let ctx = context("FROM lab/busybox:1\nRUN echo hello > /hello\nCMD [\"cat\", \"/hello\"]\n");
    kiln_ok(&k, &["build", "-t", name, ctx.path().to_str().unwrap()]);
    k
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn push_then_pull_into_a_fresh_store_keeps_digest_and_id() {
    let reg = Registry::plain();
    let name = reg.image("kiln/hello:1");
    let built = built_image(&name);
    let (out, _) = kiln_ok(&built, &["push", &name]);
    assert!(
        out.contains(&format!(
            "The push refers to repository [{}/kiln/hello]",
            reg.host()
        )),
        "{out}"
    );
    let digest = pushed_digest(&out, "1");

    let fresh = Kiln::new();
    let (out, _) = kiln_ok(&fresh, &["pull", &name]);
    assert!(out.contains(&format!("Digest: {digest}\n")), "{out}");
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {name}\n")),
        "{out}"
    );
    let (pulled, original) = (fresh.inspect(&name), built.inspect(&name));
    assert_eq!(pulled["Id"], original["Id"]);
    let repo_digest = format!("{}/kiln/hello@{digest}", reg.host());
    assert_eq!(pulled["RepoDigests"][0], repo_digest.as_str());
    assert_eq!(original["RepoDigests"][0], repo_digest.as_str());

    let (again, _) = kiln_ok(&fresh, &["pull", &name]);
    assert!(again.contains("Status: Image is up to date for"), "{again}");
}

#[test]
fn build_pulls_missing_base_images_and_pull_flag_refreshes_them() {
    let reg = Registry::plain();
    let base = reg.image("kiln/base:1");
    let publisher = Kiln::new();
    publisher.import_busybox(&base);
    kiln_ok(&publisher, &["push", &base]);

    let k = Kiln::new();
    let ctx = context(&format!(
        "FROM {base} AS build\nRUN echo built > /out\n\
         FROM {base}\nCOPY --from=build /out /out\nRUN --mount=from={base},target=/m test -f /m/bin/sh\n"
    ));
    let dir = path_str(ctx.path());
    let (_, err) = kiln_ok(&k, &["build", "-t", "app:1", dir]);
    assert_eq!(err.matches("1: Pulling from kiln/base").count(), 1, "{err}");
    assert!(err.contains("Status: Downloaded newer image for"), "{err}");
    assert_eq!(k.inspect(&base)["Id"], publisher.inspect(&base)["Id"]);

    let (_, err) = kiln_ok(&k, &["build", "-t", "app:1", dir]);
    assert!(
        !err.contains("Pulling from"),
        "present images are not pulled: {err}"
    );
    let (_, err) = kiln_ok(&k, &["build", "--pull", "-t", "app:1", dir]);
    assert!(err.contains("Status: Image is up to date for"), "{err}");
}

#[test]
fn build_push_reaches_skopeo_and_docker() {
    require("skopeo");
    require_docker();
    let reg = Registry::plain();
    let name = reg.image(&format!("{}:1", unique_name("pushed")));
    let _cleanup = DockerImage(name.clone());
    let k = Kiln::new();
    k.import_busybox("lab/busybox:1");
    let ctx = context("FROM lab/busybox:1\nRUN echo from-kiln > /msg\nCMD [\"cat\", \"/msg\"]\n");
    let (_, err) = kiln_ok(&k, &["build", "--push", "-t", &name, path_str(ctx.path())]);
    let digest = pushed_digest(&err, "1");

    let inspect = run(
        "skopeo",
        &["inspect", "--tls-verify=false", &format!("docker://{name}")],
    );
    let doc: serde_json::Value = serde_json::from_str(&inspect).expect("skopeo JSON");
    assert_eq!(doc["Digest"], digest.as_str());

    let pulled = run("docker", &["pull", &name]);
    assert!(pulled.contains(&format!("Digest: {digest}")), "{pulled}");
    assert_eq!(run("docker", &["run", "--rm", &name]), "from-kiln\n");
}

#[test]
fn login_and_logout_against_an_htpasswd_registry() {
    let reg = Registry::htpasswd("kiln", "s3cret");
    let config = tempfile::tempdir().expect("temp dir");
    let name = reg.image("kiln/private:1");
    let k = Kiln::new();
    k.import_busybox(&name);
    let kiln = |args: &[&str]| {
        let mut cmd = k.cmd(args);
        cmd.env("DOCKER_CONFIG", config.path());
        cmd
    };
    let denied = kiln(&["push", &name]).output().expect("running kiln");
    assert!(!denied.status.success());
    let err = String::from_utf8_lossy(&denied.stderr);
    assert!(
        err.contains(&name) && err.contains("access denied"),
        "{err}"
    );

    let wrong = kiln(&["login", "-u", "kiln", "-p", "nope", &reg.host()])
        .output()
        .expect("running kiln");
    assert!(!wrong.status.success(), "{wrong:?}");
    assert!(!read(config.path()).contains(&reg.host()));

    let out = kiln(&["login", "-u", "kiln", "--password-stdin", &reg.host()])
        .write_stdin("s3cret\n")
        .output()
        .expect("running kiln");
    assert_success(&out);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Login Succeeded\n");
    assert!(read(config.path()).contains(&reg.host()));
    assert_success(&kiln(&["push", &name]).output().expect("running kiln"));

    let out = kiln(&["logout", &reg.host()])
        .output()
        .expect("running kiln");
    assert_success(&out);
    let expected = format!("Removing login credentials for {}\n", reg.host());
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
    assert!(!read(config.path()).contains(&reg.host()));
    let fresh = Kiln::new();
    let denied = fresh
        .cmd(["pull", &name])
        .env("DOCKER_CONFIG", config.path())
        .output();
    assert!(!denied.expect("running kiln").status.success());
}

#[test]
fn unknown_images_fail_naming_them_and_leave_the_store_unchanged() {
    let reg = Registry::plain();
    let missing = reg.image("kiln/missing:1");
    let k = Kiln::new();
    k.import_busybox("lab/busybox:1");
    let before = k.snapshot();

    let err = k.fails(["pull", &missing]);
    assert!(
        err.contains(&missing) && err.contains("manifest unknown"),
        "{err}"
    );
    let err = k.fails(["push", &missing]);
    assert!(
        err.contains(&format!(
            "an image does not exist locally with the tag: {missing}"
        )),
        "{err}"
    );
    let ctx = context(&format!("FROM {missing}\nRUN true\n"));
    let err = k.fails(["build", "-t", "never:1", path_str(ctx.path())]);
    assert!(
        err.contains(&format!(
            "{missing}: image not found in the store, and pulling it failed"
        )) && err.contains("manifest unknown"),
        "{err}"
    );
    assert_eq!(k.snapshot(), before);
}

#[test]
fn bad_arguments_fail_before_any_network_use() {
    let k = Kiln::new();
    let err = k.fails(["pull", "--platform", "linux", "127.0.0.1:1/kiln/x:1"]);
    assert!(err.contains("invalid --platform \"linux\""), "{err}");
    let err = k.fails(["pull", "127.0.0.1:1/Kiln/UPPER:1"]);
    assert!(err.contains("invalid reference format"), "{err}");
    let err = k.fails(["login", "-u", "kiln", "127.0.0.1:1"]);
    assert!(err.contains("a password is needed"), "{err}");
    let err = k.fails(["build", "--push", "."]);
    assert!(err.contains("--tag"), "--push needs a tag: {err}");
}

/// The docker config file in `dir` (empty when there is none).
fn read(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("config.json")).unwrap_or_default()
}

/// The image ID and the `cached` flags of the non-FROM steps a `--metadata-file` lists.
fn metadata_steps(meta: &Path) -> (String, Vec<bool>) {
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(meta).expect("metadata file")).expect("JSON");
    let steps = doc["kiln.steps"].as_array().expect("kiln.steps");
    let cached = steps
        .iter()
        .filter(|s| !s["step"].as_str().unwrap_or_default().starts_with("FROM "))
        .map(|s| s["cached"].as_bool().expect("cached flag"))
        .collect();
    let id = doc["containerimage.config.digest"]
        .as_str()
        .unwrap_or_default();
    (id.to_string(), cached)
}

#[test]
fn build_cache_round_trips_through_a_registry() {
    let reg = Registry::plain();
    let base = reg.image("kiln/base:1");
    let cache = reg.image("kiln/cache:build");
    let a = Kiln::new();
    a.import_busybox(&base);
    kiln_ok(&a, &["push", &base]);
    let ctx = context(&format!(
        "FROM {base} AS builder\nRUN echo built > /out\n\
         FROM {base}\nCOPY --from=builder /out /out\nRUN cat /out > /copy\n"
    ));
    let meta_a = a.path().join("meta.json");
    let to = format!("type=registry,ref={cache}");
    kiln_ok(
        &a,
        &[
            "build",
            "--cache-to",
            &to,
            "--metadata-file",
            path_str(&meta_a),
            path_str(ctx.path()),
        ],
    );
    let (id_a, cached_a) = metadata_steps(&meta_a);
    assert_eq!(cached_a, [false, false, false]);

    let b = Kiln::new();
    let meta_b = b.path().join("meta.json");
    let from = format!("type=registry,ref={cache}");
    kiln_ok(
        &b,
        &[
            "build",
            "--cache-from",
            &from,
            "--metadata-file",
            path_str(&meta_b),
            path_str(ctx.path()),
        ],
    );
    let (id_b, cached_b) = metadata_steps(&meta_b);
    assert_eq!(
        cached_b,
        [true, true, true],
        "every step from the registry cache"
    );
    assert_eq!(id_b, id_a, "same image ID");

    let missing = format!("type=registry,ref={}", reg.image("kiln/cache:none"));
    let (_, stderr) = kiln_ok(
        &b,
        &[
            "build",
            "--no-cache",
            "--cache-from",
            &missing,
            path_str(ctx.path()),
        ],
    );
    assert!(stderr.contains("no cache there yet"), "{stderr}");
}
