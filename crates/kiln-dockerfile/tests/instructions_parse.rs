//! Typed instructions from Dockerfile text: every instruction and flag, good and bad inputs,
//! with BuildKit's messages and the span each error points at.

use std::time::Duration;

use kiln_dockerfile::instructions::{
    self, Chmod, Command, Form, HealthTest, Instruction, MountType, NetworkMode, SecurityMode,
    Sharing,
};
use kiln_dockerfile::parser;

/// The typed form of the last instruction of `src`.
fn last(src: &str) -> Command {
    let ast = parser::parse(src).expect("parses");
    let node = ast.nodes.last().expect("one instruction");
    instructions::parse(node, src).unwrap_or_else(|e| panic!("{src:?}: {e}"))
}

/// The error for the last instruction of `src`, and the source text its span covers.
fn fail(src: &str) -> (String, String) {
    let ast = parser::parse(src).expect("parses");
    let node = ast.nodes.last().expect("one instruction");
    let e = instructions::parse(node, src).expect_err("should fail");
    (e.message, src[e.span.start..e.span.end].to_owned())
}

#[test]
fn from_forms_and_keyword_as_written() {
    let c = last("From --platform=linux/arm64 alpine:3 As Build");
    assert_eq!(c.keyword, "From");
    let Instruction::From(f) = c.instruction else {
        panic!("not FROM")
    };
    assert_eq!(f.image.value, "alpine:3");
    assert_eq!(f.name.unwrap().value, "build");
    assert_eq!(f.platform.unwrap().value, "linux/arm64");
    let Instruction::From(f) = last("FROM scratch").instruction else {
        panic!()
    };
    assert!(f.name.is_none() && f.platform.is_none());
}

#[test]
fn from_errors() {
    assert_eq!(
        fail("FROM a b").0,
        "FROM requires either one or three arguments"
    );
    assert_eq!(
        fail("FROM a AS b c").0,
        "FROM requires either one or three arguments"
    );
    assert_eq!(
        fail("FROM a AS 1st"),
        ("invalid name for build stage: \"1st\", name can't start with a number or contain symbols".into(), "1st".into())
    );
    assert_eq!(
        fail("FROM --plat=x a"),
        ("unknown flag: --plat".into(), "--plat=x".into())
    );
}

#[test]
fn unknown_instruction_points_at_keyword() {
    let foo = (
        "unknown instruction: FOO (did you mean FROM?)".into(),
        "FOO".into(),
    );
    assert_eq!(fail("FROM a\nFOO bar"), foo);
    assert_eq!(
        fail("FROM a\ncoppy a b").0,
        "unknown instruction: coppy (did you mean copy?)"
    );
    assert_eq!(
        fail("FROM a\nBOGUSWORD x").0,
        "unknown instruction: BOGUSWORD"
    );
}

#[test]
fn run_shell_exec_and_heredoc_forms() {
    let Instruction::Run(r) = last("FROM a\nRUN echo  hi \\\n  there").instruction else {
        panic!()
    };
    assert_eq!(r.command.form, Form::Shell);
    assert_eq!(r.command.args.len(), 1);
    let Instruction::Run(r) = last("FROM a\nRUN [\"echo\", \"a b\"]").instruction else {
        panic!()
    };
    assert_eq!(r.command.form, Form::Exec);
    let args: Vec<&str> = r.command.args.iter().map(|a| a.value.as_str()).collect();
    assert_eq!(args, ["echo", "a b"]);
    let Instruction::Run(r) = last("FROM a\nRUN <<EOF\necho hi\nEOF\n").instruction else {
        panic!()
    };
    assert_eq!(r.command.heredocs.len(), 1);
    assert_eq!(r.command.heredocs[0].content, "echo hi\n");
}

#[test]
fn run_mounts_are_typed() {
    let src = "FROM a\nRUN --mount=type=cache,id=go,target=/root/.cache,sharing=locked,mode=0700,uid=1000,gid=1000 \
               --mount=type=secret,id=tok,env=TOKEN,required \
               --mount=type=tmpfs,dst=/t,size=64m \
               --mount=from=build,source=/out,target=/in,rw \
               --network=none --security=insecure make";
    let Instruction::Run(r) = last(src).instruction else {
        panic!()
    };
    let m: Vec<_> = r
        .mounts
        .iter()
        .map(|m| m.value.clone().expect("parsed"))
        .collect();
    assert_eq!(m[0].kind, MountType::Cache);
    assert_eq!(
        (m[0].id.as_deref(), m[0].target.as_deref()),
        (Some("go"), Some("/root/.cache"))
    );
    assert_eq!(
        (m[0].sharing, m[0].mode, m[0].uid, m[0].gid),
        (Some(Sharing::Locked), Some(0o700), Some(1000), Some(1000))
    );
    assert!(!m[0].read_only);
    assert_eq!(
        (m[1].kind, m[1].env.as_deref(), m[1].required),
        (MountType::Secret, Some("TOKEN"), true)
    );
    assert!(m[1].read_only);
    assert_eq!(
        (m[2].kind, m[2].size, m[2].target.as_deref()),
        (MountType::Tmpfs, Some(64 << 20), Some("/t"))
    );
    assert_eq!(
        (m[3].kind, m[3].from.as_deref(), m[3].source.as_deref()),
        (MountType::Bind, Some("build"), Some("/out"))
    );
    assert!(!m[3].read_only);
    assert_eq!(r.network.unwrap().value, NetworkMode::None);
    assert_eq!(r.security.unwrap().value, SecurityMode::Insecure);
}

#[test]
fn run_mount_with_variables_waits_for_expansion() {
    let Instruction::Run(r) = last("FROM a\nRUN --mount=type=cache,target=$DIR make").instruction
    else {
        panic!()
    };
    assert_eq!(r.mounts[0].text, "type=cache,target=$DIR");
    assert!(r.mounts[0].value.is_none());
}

#[test]
fn run_flag_errors() {
    assert_eq!(
        fail("FROM a\nRUN --network=bridge x"),
        ("invalid network mode \"bridge\"".into(), "bridge".into())
    );
    assert_eq!(
        fail("FROM a\nRUN --security=root x").0,
        "security \"root\" is not valid"
    );
    assert_eq!(
        fail("FROM a\nRUN --mount x").0,
        "missing a value on flag: --mount"
    );
    assert_eq!(
        fail("FROM a\nRUN --mounts=type=bind x").0,
        "unknown flag: --mounts (did you mean mount?)"
    );
    assert_eq!(
        fail("FROM a\nRUN --mount=type=cahce,target=/x x"),
        (
            "unsupported mount type \"cahce\" (did you mean cache?)".into(),
            "type=cahce".into()
        )
    );
    assert_eq!(
        fail("FROM a\nRUN --mount=target=/x,uid=1 x").0,
        "uid not allowed for \"bind\" type mounts"
    );
    assert_eq!(
        fail("FROM a\nRUN --mount=type=secret,id=a,from=b x").0,
        "secret mount should not have a from"
    );
    assert_eq!(
        fail("FROM a\nRUN --mount=type=secret x").0,
        "invalid secret mount. one of source, target required"
    );
    assert_eq!(
        fail("FROM a\nRUN --mount=type=secret,id=a,src=b x").0,
        "both source and id can't be set"
    );
    assert_eq!(
        fail("FROM a\nRUN --mount=type=bind,sharing=shared x").0,
        "invalid cache sharing set for bind mount"
    );
    assert_eq!(
        fail("FROM a\nRUN --mount=type=cache,sharing=open x").0,
        "unsupported sharing value \"open\""
    );
    assert_eq!(
        fail("FROM a\nRUN --mount=type=cache,targett=/x x"),
        (
            "unexpected key 'targett' in 'targett=/x' (did you mean target?)".into(),
            "targett=/x".into()
        )
    );
    assert_eq!(
        fail("FROM a\nRUN --mount=type=cache,nope x").0,
        "invalid field 'nope' must be a key=value pair"
    );
    assert_eq!(
        fail("FROM a\nRUN --mount=ro=maybe x").0,
        "invalid value for ro: maybe"
    );
    assert_eq!(
        fail("FROM a\nRUN --mount=type=tmpfs,size=lots x").0,
        "invalid value for size: lots"
    );
}

#[test]
fn cmd_and_entrypoint_forms() {
    let Instruction::Cmd(c) = last("FROM a\nCMD [\"nginx\", \"-g\"]").instruction else {
        panic!()
    };
    assert_eq!((c.form, c.args.len()), (Form::Exec, 2));
    let Instruction::Entrypoint(c) = last("FROM a\nENTRYPOINT exec nginx").instruction else {
        panic!()
    };
    assert_eq!(
        (c.form, c.args[0].value.as_str()),
        (Form::Shell, "exec nginx")
    );
    assert_eq!(fail("FROM a\nCMD --x y").0, "unknown flag: --x");
}

#[test]
fn copy_flags() {
    let src = "FROM a\nCOPY --from=build --chown=app:app --chmod=0755 --link --parents --exclude=*.md --exclude=.git a b /dst/";
    let Instruction::Copy(c) = last(src).instruction else {
        panic!()
    };
    let from = c.from.unwrap();
    assert_eq!(
        (from.value.as_str(), &src[from.span.start..from.span.end]),
        ("build", "build")
    );
    let t = c.transfer;
    assert_eq!(t.chown.unwrap().value, "app:app");
    assert_eq!(t.chmod.unwrap().value, Some(Chmod::Octal(0o755)));
    assert!(t.link && c.parents);
    let excludes: Vec<&str> = t.excludes.iter().map(|e| e.value.as_str()).collect();
    assert_eq!(excludes, ["*.md", ".git"]);
    let sources: Vec<&str> = t.sources.iter().map(|s| s.value.as_str()).collect();
    assert_eq!((sources, t.dest.value.as_str()), (vec!["a", "b"], "/dst/"));
}

#[test]
fn copy_symbolic_chmod_and_json_sources() {
    let Instruction::Copy(c) = last("FROM a\nCOPY --chmod=u+x,g-w [\"a b\", \"/d\"]").instruction
    else {
        panic!()
    };
    let Some(Chmod::Symbolic(clauses)) = c.transfer.chmod.unwrap().value else {
        panic!("symbolic")
    };
    assert_eq!(clauses.len(), 2);
    assert!(c.transfer.json);
    assert_eq!(c.transfer.sources[0].value, "a b");
}

#[test]
fn copy_heredoc_sources_make_files() {
    let Instruction::Copy(c) =
        last("FROM a\nCOPY <<EOF <<'RAW' /dst/\nhello $x\nEOF\nkeep $y\nRAW\n").instruction
    else {
        panic!()
    };
    let inline = &c.transfer.inline_sources;
    assert_eq!(inline.len(), 2);
    assert_eq!(
        (
            inline[0].path.as_str(),
            inline[0].content.as_str(),
            inline[0].expand
        ),
        ("EOF", "hello $x\n", true)
    );
    assert_eq!((inline[1].path.as_str(), inline[1].expand), ("RAW", false));
    assert!(c.transfer.sources.is_empty());
}

#[test]
fn copy_and_add_errors() {
    assert_eq!(
        fail("FROM a\nCOPY onlyone").0,
        "COPY requires at least two arguments, but only one was provided. Destination could not be determined"
    );
    assert_eq!(
        fail("FROM a\nCOPY a <<EOF\nx\nEOF\n").0,
        "COPY cannot accept a heredoc as a destination"
    );
    assert_eq!(
        fail("FROM a\nCOPY --checksum=sha256:x a b").0,
        "unknown flag: --checksum"
    );
    assert_eq!(
        fail("FROM a\nADD --parents a b").0,
        "unknown flag: --parents"
    );
    assert_eq!(fail("FROM a\nADD --from=x a b").0, "unknown flag: --from");
    assert_eq!(
        fail("FROM a\nCOPY --link=maybe a b").0,
        "expecting boolean value for flag --link, not: maybe"
    );
    assert_eq!(
        fail("FROM a\nCOPY --from=a --from=b a b").0,
        "duplicate flag specified: --from"
    );
    assert_eq!(
        fail("FROM a\nCOPY --chmod=999 a b"),
        (
            "invalid chmod parameter: '999'. it should be octal string and between 0 and 07777"
                .into(),
            "999".into()
        )
    );
}

#[test]
fn add_flags() {
    let src =
        "FROM a\nADD --checksum=sha256:abc --keep-git-dir --unpack=false --link https://x/y.tgz /d";
    let Instruction::Add(a) = last(src).instruction else {
        panic!()
    };
    assert_eq!(a.checksum.unwrap().value, "sha256:abc");
    assert!(a.keep_git_dir && a.transfer.link);
    assert_eq!(a.unpack, Some(false));
    let Instruction::Add(a) = last("FROM a\nADD x /d").instruction else {
        panic!()
    };
    assert_eq!(a.unpack, None);
}

#[test]
fn workdir_user_stopsignal_maintainer() {
    let Instruction::Workdir(w) = last("FROM a\nWORKDIR /app").instruction else {
        panic!()
    };
    assert_eq!(w.path.value, "/app");
    // WORKDIR and USER take the rest of the line as one argument, as in BuildKit.
    let Instruction::Workdir(w) = last("FROM a\nWORKDIR /a b").instruction else {
        panic!()
    };
    assert_eq!(w.path.value, "/a b");
    let Instruction::User(u) = last("FROM a\nUSER app:staff").instruction else {
        panic!()
    };
    assert_eq!(u.split(), ("app", Some("staff")));
    let Instruction::User(u) = last("FROM a\nUSER 1000").instruction else {
        panic!()
    };
    assert_eq!(u.split(), ("1000", None));
    let Instruction::StopSignal(s) = last("FROM a\nSTOPSIGNAL SIGTERM").instruction else {
        panic!()
    };
    assert_eq!(s.signal.value, "SIGTERM");
    let Instruction::Maintainer(m) = last("FROM a\nMAINTAINER Jane <j@x>").instruction else {
        panic!()
    };
    assert_eq!(m.name.value, "Jane <j@x>");
}

#[test]
fn env_and_label_both_forms() {
    let Instruction::Env(e) = last("FROM a\nENV a=1 b=\"x y\"").instruction else {
        panic!()
    };
    let pairs: Vec<(&str, &str, bool)> = e
        .pairs
        .iter()
        .map(|p| (p.key.value.as_str(), p.value.value.as_str(), p.legacy))
        .collect();
    assert_eq!(pairs, [("a", "1", false), ("b", "\"x y\"", false)]);
    let Instruction::Env(e) = last("FROM a\nENV name some value").instruction else {
        panic!()
    };
    assert_eq!(
        (e.pairs[0].value.value.as_str(), e.pairs[0].legacy),
        ("some value", true)
    );
    let Instruction::Label(l) = last("FROM a\nLABEL stage=builder version=1").instruction else {
        panic!()
    };
    assert_eq!(l.pairs.len(), 2);
    assert_eq!(fail("FROM a\nLABEL --x=1 a=b").0, "unknown flag: --x");
}

#[test]
fn arg_declarations() {
    let Instruction::Arg(a) = last("ARG A B=2 C=\"x y\"").instruction else {
        panic!()
    };
    let decls: Vec<(&str, Option<&str>)> = a
        .args
        .iter()
        .map(|d| {
            (
                d.name.value.as_str(),
                d.default.as_ref().map(|v| v.value.as_str()),
            )
        })
        .collect();
    assert_eq!(
        decls,
        [("A", None), ("B", Some("2")), ("C", Some("\"x y\""))]
    );
    assert_eq!(
        fail("ARG =x"),
        ("ARG names can not be blank".into(), "=x".into())
    );
}

#[test]
fn expose_volume_shell() {
    let Instruction::Expose(e) = last("FROM a\nEXPOSE 8080 443/tcp 80").instruction else {
        panic!()
    };
    let ports: Vec<&str> = e.ports.iter().map(|p| p.value.as_str()).collect();
    assert_eq!(ports, ["443/tcp", "80", "8080"]);
    let Instruction::Volume(v) = last("FROM a\nVOLUME [\"/a\", \"/b\"]").instruction else {
        panic!()
    };
    assert_eq!(v.paths.len(), 2);
    let Instruction::Volume(v) = last("FROM a\nVOLUME /c /d").instruction else {
        panic!()
    };
    assert_eq!(v.paths[1].value, "/d");
    assert_eq!(
        fail("FROM a\nVOLUME [\"\"]").0,
        "VOLUME specified can not be an empty string"
    );
    let Instruction::Shell(s) = last("FROM a\nSHELL [\"/bin/bash\", \"-c\"]").instruction else {
        panic!()
    };
    assert_eq!(s.shell.len(), 2);
    assert_eq!(
        fail("FROM a\nSHELL /bin/bash -c").0,
        "SHELL requires the arguments to be in JSON form"
    );
    assert_eq!(
        fail("FROM a\nSHELL []").0,
        "SHELL requires at least one argument"
    );
}

#[test]
fn healthcheck_options_and_forms() {
    let src = "FROM a\nHEALTHCHECK --interval=1m30s --timeout=3s --start-period=.5s --start-interval=2s --retries=3 CMD curl -f http://x/";
    let Instruction::Healthcheck(h) = last(src).instruction else {
        panic!()
    };
    assert_eq!(h.interval, Duration::from_secs(90));
    assert_eq!(h.timeout, Duration::from_secs(3));
    assert_eq!(h.start_period, Duration::from_millis(500));
    assert_eq!(h.start_interval, Duration::from_secs(2));
    assert_eq!(h.retries, 3);
    let HealthTest::Cmd(c) = h.test else {
        panic!("cmd")
    };
    assert_eq!(
        (c.form, c.args[0].value.as_str()),
        (Form::Shell, "curl -f http://x/")
    );
    let Instruction::Healthcheck(h) = last("FROM a\nHEALTHCHECK CMD [\"/check\"]").instruction
    else {
        panic!()
    };
    let HealthTest::Cmd(c) = h.test else {
        panic!("cmd")
    };
    assert_eq!(c.form, Form::Exec);
    let Instruction::Healthcheck(h) = last("FROM a\nHEALTHCHECK --bogus=1 NONE").instruction else {
        panic!()
    };
    assert_eq!(h.test, HealthTest::None);
}

#[test]
fn healthcheck_errors() {
    assert_eq!(
        fail("FROM a\nHEALTHCHECK NONE x").0,
        "HEALTHCHECK NONE takes no arguments"
    );
    assert_eq!(
        fail("FROM a\nHEALTHCHECK CONNECT x").0,
        "Unknown type \"CONNECT\" in HEALTHCHECK (try CMD)"
    );
    assert_eq!(
        fail("FROM a\nHEALTHCHECK --interval=10 CMD x"),
        ("time: missing unit in duration \"10\"".into(), "10".into())
    );
    assert_eq!(
        fail("FROM a\nHEALTHCHECK --timeout=100us CMD x").0,
        "Interval \"timeout\" cannot be less than 1ms"
    );
    assert_eq!(
        fail("FROM a\nHEALTHCHECK --retries=-1 CMD x").0,
        "--retries cannot be negative (-1)"
    );
    assert_eq!(
        fail("FROM a\nHEALTHCHECK --retries=x CMD x").0,
        "strconv.ParseInt: parsing \"x\": invalid syntax"
    );
    assert_eq!(
        fail("FROM a\nHEALTHCHECK --start-period=1d CMD x").0,
        "time: unknown unit \"d\" in duration \"1d\""
    );
    assert_eq!(
        fail("FROM a\nHEALTHCHECK --interval=5s --nope=1 CMD x").0,
        "unknown flag: --nope"
    );
}

#[test]
fn onbuild_keeps_the_trigger() {
    let Instruction::Onbuild(o) = last("FROM a\nONBUILD RUN echo hi").instruction else {
        panic!()
    };
    assert_eq!(o.expression, "RUN echo hi");
    assert!(matches!(o.trigger.instruction, Instruction::Run(_)));
    let Instruction::Onbuild(o) = last("FROM a\nonbuild COPY <<EOF /x\nbody\nEOF\n").instruction
    else {
        panic!()
    };
    assert_eq!(o.expression, "COPY <<EOF /x\nbody\nEOF");
    let Instruction::Copy(c) = o.trigger.instruction else {
        panic!("copy")
    };
    assert_eq!(c.transfer.inline_sources[0].content, "body\n");
}

#[test]
fn onbuild_forbidden_triggers() {
    assert_eq!(
        fail("FROM a\nONBUILD ONBUILD RUN x"),
        (
            "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into(),
            "ONBUILD".into()
        )
    );
    assert_eq!(
        fail("FROM a\nONBUILD FROM b").0,
        "FROM isn't allowed as an ONBUILD trigger"
    );
    assert_eq!(
        fail("FROM a\nONBUILD maintainer me").0,
        "MAINTAINER isn't allowed as an ONBUILD trigger"
    );
    assert_eq!(fail("FROM a\nONBUILD RUN --bad x").0, "unknown flag: --bad");
}
