//! Stages and variable expansion: before-instruction semantics, ARG scoping across stages,
//! build-arg overrides, ENV over ARG, automatic ARGs, stage names and `--from` resolution.

use std::collections::BTreeMap;

use kiln_dockerfile::instructions::{Chmod, Instruction, Source};
use kiln_dockerfile::parser;
use kiln_dockerfile::stages::{
    self, Base, DEFAULT_PATH, Dockerfile, Expanded, PROXY_ARGS, Platform, StageOptions,
};

fn opts() -> StageOptions {
    StageOptions {
        target: None,
        target_platform: Platform::parse("linux/arm64").unwrap(),
        build_platform: Platform::parse("linux/amd64").unwrap(),
        image_env: BTreeMap::new(),
    }
}

fn build_with(
    src: &str,
    args: &[(&str, &str)],
    opts: &StageOptions,
) -> Result<Dockerfile, (String, String)> {
    let ast = parser::parse(src).expect("parses");
    let args: BTreeMap<String, String> = args
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    stages::stages(&ast, src, &args, opts)
        .map_err(|e| (e.message.clone(), src[e.span.start..e.span.end].to_owned()))
}

fn build(src: &str, args: &[(&str, &str)]) -> Dockerfile {
    build_with(src, args, &opts()).unwrap_or_else(|e| panic!("{src:?}: {e:?}"))
}

fn fail(src: &str) -> (String, String) {
    build_with(src, &[], &opts()).expect_err("should fail")
}

/// The last instruction of the last stage.
fn last(df: &Dockerfile) -> &Expanded {
    df.stages.last().unwrap().instructions.last().unwrap()
}

/// The expanded WORKDIR path of the last instruction.
fn workdir(df: &Dockerfile) -> String {
    match &last(df).command.instruction {
        Instruction::Workdir(w) => w.path.value.clone(),
        other => panic!("not WORKDIR: {other:?}"),
    }
}

#[test]
fn env_substitutions_see_values_from_before_the_instruction() {
    let df = build("FROM a\nENV a=1\nENV a=2 b=$a\nWORKDIR /$a/$b", &[]);
    let Instruction::Env(e) = &df.stages[0].instructions[1].command.instruction else {
        panic!()
    };
    assert_eq!(e.pairs[1].value.value, "1");
    assert_eq!(workdir(&df), "/2/1");
}

#[test]
fn arg_defaults_see_values_from_before_the_instruction() {
    // Checked with docker 26.1.5: `ARG a=1 b=${a}x` gives b = "x".
    let df = build("FROM a\nARG a=1 b=${a}x\nWORKDIR /$a/$b", &[]);
    assert_eq!(workdir(&df), "/1/x");
    let Instruction::Arg(a) = &df.stages[0].instructions[0].command.instruction else {
        panic!()
    };
    assert_eq!(a.args[1].value.as_deref(), Some("x"));
    assert_eq!(a.args[1].default.as_ref().unwrap().value, "${a}x");
    let df = build("FROM a\nARG a=1\nARG b=${a}x\nWORKDIR /$b", &[]);
    assert_eq!(workdir(&df), "/1x");
}

#[test]
fn meta_args_take_effect_one_after_the_other() {
    let df = build("ARG G1=g G2=${G1}2\nFROM a\nARG G2\nWORKDIR /$G2", &[]);
    assert_eq!(workdir(&df), "/g2");
}

#[test]
fn meta_args_expand_from_and_build_args_override_them() {
    let src = "ARG REPO=lab\nARG IMAGE=$REPO/busybox\nFROM ${IMAGE}:1";
    assert_eq!(
        build(src, &[]).stages[0].base,
        Base::Image("lab/busybox:1".into())
    );
    assert_eq!(
        build(src, &[("REPO", "mirror")]).stages[0].base,
        Base::Image("mirror/busybox:1".into())
    );
    assert_eq!(
        build(src, &[("IMAGE", "alpine")]).stages[0].base,
        Base::Image("alpine:1".into())
    );
}

#[test]
fn global_args_are_visible_in_a_stage_only_when_declared_again() {
    let df = build("ARG V=1\nFROM a\nWORKDIR /$V", &[]);
    assert_eq!(workdir(&df), "/");
    assert!(last(&df).undefined_vars.contains("V"));
    let df = build("ARG V=1\nFROM a\nARG V\nWORKDIR /$V", &[]);
    assert_eq!(workdir(&df), "/1");
    assert!(last(&df).undefined_vars.is_empty());
    let df = build("ARG V=1\nFROM a\nARG V\nWORKDIR /$V", &[("V", "cli")]);
    assert_eq!(workdir(&df), "/cli");
}

#[test]
fn declared_arg_without_value_is_not_undefined() {
    let df = build("FROM a\nARG NOVALUE\nWORKDIR /x$NOVALUE", &[]);
    assert_eq!(workdir(&df), "/x");
    assert!(last(&df).undefined_vars.is_empty());
    let df = build("FROM a\nCOPY $NOPE /x", &[]);
    assert_eq!(
        last(&df).undefined_vars.iter().collect::<Vec<_>>(),
        ["NOPE"]
    );
}

#[test]
fn build_args_override_stage_defaults() {
    let df = build("FROM a\nARG X=def\nWORKDIR /$X", &[("X", "cli")]);
    assert_eq!(workdir(&df), "/cli");
    let df = build("FROM a\nARG X=def\nWORKDIR /$X", &[("Y", "cli")]);
    assert_eq!(workdir(&df), "/def");
}

#[test]
fn env_overrides_an_earlier_arg() {
    let df = build("FROM a\nARG X=arg\nENV X=env\nWORKDIR /$X", &[("X", "cli")]);
    assert_eq!(workdir(&df), "/env");
}

#[test]
fn arg_with_a_value_after_env_replaces_it_for_later_instructions() {
    // BuildKit adds every ARG value to the stage's variables, so a later ARG wins over ENV there.
    let df = build("FROM a\nENV X=env\nARG X=arg\nWORKDIR /$X", &[]);
    assert_eq!(workdir(&df), "/arg");
    let df = build("FROM a\nENV X=env\nARG X\nWORKDIR /$X", &[]);
    assert_eq!(workdir(&df), "/env");
}

#[test]
fn scope_resets_at_each_from() {
    let df = build(
        "FROM a AS one\nENV E=1\nARG A=2\nFROM b\nWORKDIR /$E$A",
        &[],
    );
    assert_eq!(workdir(&df), "/");
    assert_eq!(last(&df).undefined_vars.len(), 2);
}

#[test]
fn from_a_stage_inherits_its_env_and_args() {
    let df = build(
        "FROM a AS one\nENV E=1\nARG A=2\nFROM ONE\nWORKDIR /$E/$A",
        &[],
    );
    assert_eq!(df.stages[1].base, Base::Stage(0));
    assert_eq!(workdir(&df), "/1/2");
    assert_eq!(last(&df).run_args, [("A".to_owned(), "2".to_owned())]);
}

#[test]
fn automatic_args_in_from_and_after_declaration() {
    let src = "FROM --platform=$BUILDPLATFORM a AS b\nARG TARGETARCH\nWORKDIR /$TARGETARCH";
    let df = build(src, &[]);
    assert_eq!(df.stages[0].platform.as_ref().unwrap().value, "linux/amd64");
    assert_eq!(workdir(&df), "/arm64");
    assert_eq!(workdir(&build("FROM a\nWORKDIR /$TARGETARCH", &[])), "/");
    assert_eq!(
        workdir(&build(src, &[("TARGETARCH", "riscv64")])),
        "/riscv64"
    );
    let df = build("FROM a AS x\nARG TARGETSTAGE\nWORKDIR /$TARGETSTAGE", &[]);
    assert_eq!(workdir(&df), "/x");
    let global: BTreeMap<_, _> = df.global_args.iter().cloned().collect();
    assert_eq!(global["TARGETPLATFORM"], "linux/arm64");
    assert_eq!(global["BUILDOS"], "linux");
}

#[test]
fn run_sees_args_and_env_and_default_path() {
    let df = build("FROM a\nARG X=1\nENV Y=2\nRUN true", &[]);
    let run = last(&df);
    assert_eq!(run.run_args, [("X".to_owned(), "1".to_owned())]);
    let env: BTreeMap<_, _> = run.env.iter().cloned().collect();
    assert_eq!(
        (env["X"].as_str(), env["Y"].as_str(), env["PATH"].as_str()),
        ("1", "2", DEFAULT_PATH)
    );
}

#[test]
fn base_image_env_seeds_expansion() {
    let mut o = opts();
    o.image_env.insert(
        "lab/busybox:1".into(),
        vec![
            ("HOME".into(), "/root".into()),
            ("PATH".into(), "/bin".into()),
        ],
    );
    let df = build_with(
        "FROM lab/busybox:1\nENV PATH=/opt:$PATH\nWORKDIR $HOME",
        &[],
        &o,
    )
    .unwrap();
    assert_eq!(workdir(&df), "/root");
    let Instruction::Env(e) = &df.stages[0].instructions[0].command.instruction else {
        panic!()
    };
    assert_eq!(e.pairs[0].value.value, "/opt:/bin");
}

#[test]
fn expansion_in_copy_label_user_volume_expose_stopsignal() {
    let src = "FROM a\nARG U=app D=/dst P=\"80 443\" S=TERM\n\
               COPY --chown=$U:$U --chmod=${M:-755} src/$U $D\nLABEL l=$U\nUSER $U\nVOLUME $D\nEXPOSE $P\nSTOPSIGNAL SIG$S";
    let df = build(src, &[]);
    let i: Vec<&Instruction> = df.stages[0]
        .instructions
        .iter()
        .map(|e| &e.command.instruction)
        .collect();
    let Instruction::Copy(c) = i[1] else { panic!() };
    assert_eq!(c.transfer.chown.as_ref().unwrap().value, "app:app");
    assert_eq!(
        c.transfer.chmod.as_ref().unwrap().value,
        Some(Chmod::Octal(0o755))
    );
    assert_eq!(
        (
            c.transfer.sources[0].value.as_str(),
            c.transfer.dest.value.as_str()
        ),
        ("src/app", "/dst")
    );
    let Instruction::Label(l) = i[2] else {
        panic!()
    };
    assert_eq!(l.pairs[0].value.value, "app");
    let Instruction::User(u) = i[3] else { panic!() };
    assert_eq!(u.user.value, "app");
    let Instruction::Volume(v) = i[4] else {
        panic!()
    };
    assert_eq!(v.paths[0].value, "/dst");
    let Instruction::Expose(e) = i[5] else {
        panic!()
    };
    assert_eq!(
        e.ports.iter().map(|p| p.value.as_str()).collect::<Vec<_>>(),
        ["80", "443"]
    );
    let Instruction::StopSignal(s) = i[6] else {
        panic!()
    };
    assert_eq!(s.signal.value, "SIGTERM");
}

#[test]
fn copy_heredoc_bodies_expand_unless_quoted() {
    let df = build(
        "FROM a\nARG N=world\nCOPY <<EOF <<'RAW' /x/\nhello $N\nEOF\nkeep $N\nRAW\n",
        &[],
    );
    let Instruction::Copy(c) = &last(&df).command.instruction else {
        panic!()
    };
    assert_eq!(c.transfer.inline_sources[0].content, "hello world\n");
    assert_eq!(c.transfer.inline_sources[1].content, "keep $N\n");
    // Quotes are plain text in a heredoc body, so variables inside them still expand.
    let df = build(
        "FROM a\nARG N=w\nCOPY <<EOF /x\necho '$N' \"$N\" \\$N\nEOF\n",
        &[],
    );
    let Instruction::Copy(c) = &last(&df).command.instruction else {
        panic!()
    };
    assert_eq!(c.transfer.inline_sources[0].content, "echo 'w' \"w\" $N\n");
}

#[test]
fn run_and_cmd_are_not_expanded() {
    let df = build("FROM a\nENV X=1\nRUN echo $X\nCMD echo $X", &[]);
    let Instruction::Run(r) = &df.stages[0].instructions[1].command.instruction else {
        panic!()
    };
    assert_eq!(r.command.args[0].value, "echo $X");
    let Instruction::Cmd(c) = &last(&df).command.instruction else {
        panic!()
    };
    assert_eq!(c.args[0].value, "echo $X");
}

#[test]
fn mount_options_are_expanded_and_from_resolved() {
    let src = "FROM a AS build\nFROM b\nARG D=/cache S=build\nRUN --mount=type=cache,target=$D,from=$S,sharing=locked make";
    let df = build(src, &[]);
    let Instruction::Run(r) = &last(&df).command.instruction else {
        panic!()
    };
    let m = r.mounts[0].value.as_ref().unwrap();
    assert_eq!(m.target.as_deref(), Some("/cache"));
    assert_eq!(m.source_ref, Some(Source::Stage(0)));
    assert_eq!(last(&df).variable_from.len(), 1);
    assert_eq!(
        fail("FROM a\nARG M=9\nRUN --mount=type=cache,target=/x,mode=$M x").0,
        "invalid value 9 for mode"
    );
}

#[test]
fn copy_from_resolution() {
    let src = "FROM a AS build\nFROM b\nCOPY --from=build /x /x\nCOPY --from=0 /y /y\nCOPY --from=alpine:3 /z /z";
    let df = build(src, &[]);
    let sources: Vec<Option<Source>> = df.stages[1]
        .instructions
        .iter()
        .map(|e| match &e.command.instruction {
            Instruction::Copy(c) => c.source.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(
        sources,
        [
            Some(Source::Stage(0)),
            Some(Source::Stage(0)),
            Some(Source::Image("alpine:3".into()))
        ]
    );
    assert!(
        df.stages[1]
            .instructions
            .iter()
            .all(|e| e.variable_from.is_empty())
    );
}

#[test]
fn copy_from_with_a_variable_is_expanded_and_recorded() {
    let src = "FROM a AS build\nFROM b\nARG SRC=build\nCOPY --from=$SRC /x /x";
    let df = build(src, &[]);
    let e = last(&df);
    let Instruction::Copy(c) = &e.command.instruction else {
        panic!()
    };
    assert_eq!(c.source, Some(Source::Stage(0)));
    assert_eq!(e.variable_from.len(), 1);
    assert_eq!(
        &src[e.variable_from[0].start..e.variable_from[0].end],
        "$SRC"
    );
}

#[test]
fn copy_from_must_name_an_earlier_stage() {
    assert_eq!(
        fail("FROM a AS x\nCOPY --from=x /a /b"),
        (
            "circular dependency detected on stage: x".into(),
            "x".into()
        )
    );
    assert_eq!(
        fail("FROM a\nCOPY --from=later /a /b\nFROM b AS later").0,
        "cannot copy from stage \"later\", it needs to be defined before current stage \"stage-0\""
    );
    assert_eq!(
        fail("FROM a\nFROM b\nCOPY --from=5 /a /b").0,
        "invalid stage index 5"
    );
}

#[test]
fn stage_names_rules() {
    let df = build("FROM a AS Build\nFROM build AS final", &[]);
    assert_eq!(df.stages[0].name.as_ref().unwrap().value, "build");
    assert_eq!(df.stages[1].base, Base::Stage(0));
    assert_eq!(df.stage_index("FINAL").unwrap(), 1);
    assert_eq!(df.target(None).unwrap(), 1);
    assert_eq!(
        df.stage_index("nope").unwrap_err().message,
        "target stage \"nope\" could not be found"
    );
    let (msg, at) = fail("FROM a AS x\nFROM b AS X");
    assert_eq!(
        (msg.as_str(), at.as_str()),
        (
            "duplicate stage name \"x\", stage names should be unique",
            "X"
        )
    );
    assert_eq!(
        fail("FROM a AS scratch").0,
        "stage name \"scratch\" is reserved"
    );
    assert_eq!(
        fail("FROM a AS context").0,
        "stage name \"context\" is reserved"
    );
}

#[test]
fn from_scratch_and_later_names_are_not_stages() {
    let df = build("FROM scratch\nFROM later\nFROM a AS later", &[]);
    assert_eq!(df.stages[0].base, Base::Scratch);
    assert_eq!(df.stages[1].base, Base::Image("later".into()));
}

#[test]
fn structural_errors() {
    assert_eq!(
        fail("RUN x\nFROM a"),
        ("no build stage in current context".into(), "RUN x".into())
    );
    assert_eq!(
        fail("ARG B\nFROM $B").0,
        "base name ($B) should not be blank"
    );
    assert_eq!(
        fail("ARG P=\nFROM --platform=$P a").0,
        "empty platform value from expression $P"
    );
    assert_eq!(
        fail("ARG ONLY=1").0,
        "dockerfile contains no stages to build"
    );
}

#[test]
fn meta_arg_undefined_vars_are_recorded() {
    let df = build("ARG A=$NOPE\nFROM a$MISSING", &[]);
    assert!(df.meta_args[0].undefined_vars.contains("NOPE"));
    assert!(df.stages[0].undefined_vars.contains("MISSING"));
    let df = build("ARG TAG\nFROM a:1$TAG", &[]);
    assert!(df.stages[0].undefined_vars.is_empty());
}

#[test]
fn proxy_args_need_no_declaration() {
    assert!(PROXY_ARGS.contains(&"http_proxy") && PROXY_ARGS.contains(&"NO_PROXY"));
}

#[test]
fn stopsignal_and_expose_values_are_checked_after_expansion() {
    let (msg, at) = fail("FROM a\nARG S=NOPE\nSTOPSIGNAL SIG$S");
    assert_eq!(
        (msg.as_str(), at.as_str()),
        ("invalid signal: SIGNOPE", "SIG$S")
    );
    assert_eq!(fail("FROM a\nEXPOSE 80/icmp").0, "Invalid proto: icmp");
    assert_eq!(
        fail("FROM a\nARG P=http\nEXPOSE $P").0,
        "Invalid containerPort: http"
    );
    build("FROM a\nSTOPSIGNAL 9\nEXPOSE 8000-8010/udp", &[]);
}

#[test]
fn add_checksum_is_a_digest_for_one_url() {
    let sum = format!("sha256:{}", "0".repeat(64));
    let df = build(
        &format!("FROM a\nARG SUM={sum}\nADD --checksum=$SUM https://x/y.tgz /y"),
        &[],
    );
    let Instruction::Add(a) = &last(&df).command.instruction else {
        panic!()
    };
    assert_eq!(a.checksum.as_ref().unwrap().value, sum);
    assert_eq!(
        fail("FROM a\nADD --checksum=sha256:12 https://x/y /y").0,
        "invalid checksum digest length"
    );
    assert_eq!(
        fail(&format!("FROM a\nADD --checksum={sum} y /y")).0,
        "checksum can't be specified for non-HTTP(S) sources"
    );
    assert_eq!(
        fail(&format!(
            "FROM a\nADD --checksum={sum} https://x/a https://x/b /y"
        ))
        .0,
        "checksum can't be specified for multiple sources"
    );
}

#[test]
fn exclude_patterns_stay_as_written() {
    let df = build("FROM a\nARG X=md\nCOPY --exclude=*.$X src/ /dst/", &[]);
    let Instruction::Copy(c) = &last(&df).command.instruction else {
        panic!()
    };
    assert_eq!(c.transfer.excludes[0].value, "*.$X");
}

#[test]
fn expansion_errors_point_into_the_word() {
    let (msg, at) = fail("FROM a\nWORKDIR /x/${NOPE:?must be set}");
    assert!(msg.contains("NOPE"), "{msg}");
    assert!(at.starts_with("${NOPE"), "{at}");
}

#[test]
fn escape_directive_drives_expansion() {
    let df = build("# escape=`\nFROM a\nENV X=a`$b\nWORKDIR /$X", &[]);
    assert_eq!(workdir(&df), "/a$b");
    let df = build("FROM a\nENV X=a\\$b\nWORKDIR /$X", &[]);
    assert_eq!(workdir(&df), "/a$b");
}
