//! `kiln build --progress`: the live terminal display (run under a pseudo-terminal made by
//! util-linux's `script`) and its refusal without a terminal.

mod cli_store_util;

use std::path::Path;
use std::process::Command;

use cli_store_util::{Kiln, require};

const DOCKERFILE: &str = "FROM lab/busybox:1 AS builder\n\
    RUN echo compiling-now && echo built > /out\n\
    FROM lab/busybox:1\nCOPY --from=builder /out /out\n";

/// Runs `kiln ARGS` on a pseudo-terminal; returns what it drew and whether it succeeded.
fn on_tty(kiln: &Kiln, args: &str) -> (String, bool) {
    let script = require("script");
    let bin = assert_cmd::cargo::cargo_bin("kiln");
    let typescript = kiln.path().join("typescript");
    let command = format!("{} --root {} {args}", bin.display(), kiln.path().display());
    let out = Command::new(script)
        .args(["-qec", &command])
        .arg(&typescript)
        .env("TERM", "xterm")
        .output()
        .expect("running script");
    let drawn = std::fs::read(&typescript).expect("typescript written");
    (
        String::from_utf8_lossy(&drawn).into_owned(),
        out.status.success(),
    )
}

fn context(dir: &Path, dockerfile: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
}

#[test]
fn tty_display_shows_steps_timers_and_cache_hits() {
    let kiln = Kiln::new();
    kiln.import_busybox("lab/busybox:1");
    let ctx = kiln.path().join("ctx");
    context(&ctx, DOCKERFILE);
    let args = format!("build --progress tty -t tty:1 {}", ctx.display());
    let (first, ok) = on_tty(&kiln, &args);
    assert!(ok, "build failed:\n{first}");
    assert!(first.contains("[+] Building"), "no header:\n{first}");
    assert!(first.contains("FINISHED"), "header not finished:\n{first}");
    assert!(
        first.contains(" => [builder 2/2] RUN echo compiling-now"),
        "no step line:\n{first}"
    );
    assert!(first.contains("compiling-now"), "step output not shown");
    assert!(first.contains(" => naming to docker.io/library/tty:1 done"));

    let (second, ok) = on_tty(&kiln, &args);
    assert!(ok, "rebuild failed:\n{second}");
    assert!(
        second.contains(" => CACHED [builder 2/2] RUN echo compiling-now"),
        "rebuild not shown as cached:\n{second}"
    );
}

#[test]
fn tty_display_shows_the_failed_steps_output() {
    let kiln = Kiln::new();
    kiln.import_busybox("lab/busybox:1");
    let ctx = kiln.path().join("ctx");
    context(
        &ctx,
        "FROM lab/busybox:1\nRUN echo about-to-fail && exit 3\n",
    );
    let (drawn, ok) = on_tty(&kiln, &format!("build --progress tty {}", ctx.display()));
    assert!(!ok, "a failing RUN succeeded:\n{drawn}");
    assert!(drawn.contains(" => ERROR [stage-0 2/2] RUN echo about-to-fail"));
    assert!(
        drawn.contains("    > about-to-fail"),
        "no output tail:\n{drawn}"
    );
}

#[test]
fn tty_progress_without_a_terminal_is_refused() {
    let kiln = Kiln::new();
    let ctx = kiln.path().join("ctx");
    context(&ctx, DOCKERFILE);
    let err = kiln.fails(["build", "--progress", "tty", ctx.to_str().unwrap()]);
    assert!(err.contains("--progress tty needs a terminal"), "{err}");
}
