//! The multi-stage Dockerfiles of the conformance cases, resolved into stages: names, bases,
//! `COPY --from` sources, the `--target` stage, and typed metadata instructions.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use kiln_dockerfile::instructions::{Form, HealthTest, Instruction, MountType, Sharing, Source};
use kiln_dockerfile::parser;
use kiln_dockerfile::stages::{self, Base, Dockerfile, StageOptions};

const CASES: &str = "/work/shared/conformance/cases";

fn case(name: &str) -> (Dockerfile, Option<String>) {
    let dir = Path::new(CASES).join(name);
    let src = std::fs::read_to_string(dir.join("context/Dockerfile")).expect("case Dockerfile");
    let env = std::fs::read_to_string(dir.join("case.env")).unwrap_or_default();
    let target = env
        .lines()
        .find_map(|l| l.strip_prefix("TARGET="))
        .map(str::to_owned);
    let ast = parser::parse(&src).expect("parses");
    let opts = StageOptions {
        target: target.clone(),
        ..StageOptions::default()
    };
    let df = stages::stages(&ast, &src, &BTreeMap::new(), &opts)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    (df, target)
}

/// (display name, base) of each stage.
fn shape(df: &Dockerfile) -> Vec<(String, Base)> {
    df.stages
        .iter()
        .map(|s| (s.display_name(), s.base.clone()))
        .collect()
}

/// The resolved `--from` of every COPY in stage `i`.
fn copy_sources(df: &Dockerfile, i: usize) -> Vec<Option<Source>> {
    df.stages[i]
        .instructions
        .iter()
        .filter_map(|e| match &e.command.instruction {
            Instruction::Copy(c) => Some(c.source.clone()),
            _ => None,
        })
        .collect()
}

fn image(name: &str) -> Base {
    Base::Image(name.into())
}

#[test]
fn every_case_resolves() {
    let mut seen = 0;
    for entry in std::fs::read_dir(CASES).expect("cases dir") {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let (df, target) = case(&name);
        let index = df
            .target(target.as_deref())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(index < df.stages.len(), "{name}");
        seen += 1;
    }
    assert!(seen >= 8, "expected the conformance cases, found {seen}");
}

#[test]
fn c_static_scratch() {
    let (df, _) = case("c-static-scratch");
    assert_eq!(
        shape(&df),
        [
            ("builder".into(), image("lab/gcc:12")),
            ("stage-1".into(), Base::Scratch)
        ]
    );
    assert_eq!(copy_sources(&df, 1), [Some(Source::Stage(0))]);
}

#[test]
fn cache_mount_mounts_are_typed() {
    let (df, _) = case("cache-mount");
    let mounts: Vec<_> = df.stages[0]
        .instructions
        .iter()
        .filter_map(|e| match &e.command.instruction {
            Instruction::Run(r) => Some(r.mounts[0].value.clone().unwrap()),
            _ => None,
        })
        .collect();
    assert_eq!(mounts.len(), 2);
    assert_eq!(
        (mounts[0].kind, mounts[0].id.as_deref()),
        (MountType::Cache, Some("fake-pm"))
    );
    assert_eq!(mounts[0].target.as_deref(), Some("/root/.cache/fake-pm"));
    assert_eq!(mounts[1].sharing, Some(Sharing::Locked));
    assert_eq!(copy_sources(&df, 1), [Some(Source::Stage(0))]);
}

#[test]
fn metadata_instructions() {
    let (df, _) = case("metadata");
    let last = &df.stages[1];
    let find = |f: &dyn Fn(&Instruction) -> bool| {
        last.instructions
            .iter()
            .filter(|e| f(&e.command.instruction))
            .count()
    };
    assert_eq!(find(&|i| matches!(i, Instruction::StopSignal(_))), 2);
    assert_eq!(find(&|i| matches!(i, Instruction::Expose(_))), 2);
    let health = last
        .instructions
        .iter()
        .find_map(|e| match &e.command.instruction {
            Instruction::Healthcheck(h) => Some(h.clone()),
            _ => None,
        });
    let h = health.expect("HEALTHCHECK");
    assert_eq!(
        (h.interval, h.timeout, h.start_period, h.retries),
        (
            Duration::from_secs(30),
            Duration::from_secs(5),
            Duration::from_secs(10),
            4
        )
    );
    let HealthTest::Cmd(c) = h.test else {
        panic!("CMD")
    };
    assert_eq!((c.form, c.args.len()), (Form::Exec, 3));
    let volume = last
        .instructions
        .iter()
        .find_map(|e| match &e.command.instruction {
            Instruction::Volume(v) => {
                Some(v.paths.iter().map(|p| p.value.clone()).collect::<Vec<_>>())
            }
            _ => None,
        });
    // Not JSON, so the quotes go in expansion: BuildKit's expected.json has "[/var/log/app]" too.
    assert_eq!(volume.unwrap(), ["/data", "[/var/log/app]"]);
    let labels = last
        .instructions
        .iter()
        .find_map(|e| match &e.command.instruction {
            Instruction::Label(l) => Some(
                l.pairs
                    .iter()
                    .map(|p| (p.key.value.clone(), p.value.value.clone()))
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        });
    let expected = [
        ("org.opencontainers.image.title", "metadata case"),
        ("multi.word", "a b c"),
    ];
    assert_eq!(
        labels.unwrap(),
        expected.map(|(k, v)| (k.to_owned(), v.to_owned()))
    );
    assert_eq!(copy_sources(&df, 1), [Some(Source::Stage(0)), None]);
}

#[test]
fn node_like_chains_stages() {
    let (df, _) = case("node-like");
    assert_eq!(
        shape(&df),
        [
            ("deps".into(), image("lab/busybox:1")),
            ("build".into(), Base::Stage(0)),
            ("production".into(), image("lab/busybox:1")),
        ]
    );
    assert_eq!(copy_sources(&df, 2), [Some(Source::Stage(1)), None]);
}

#[test]
fn parallel_copies_from_two_stages() {
    let (df, _) = case("parallel");
    assert_eq!(
        copy_sources(&df, 2),
        [Some(Source::Stage(0)), Some(Source::Stage(1)), None]
    );
}

#[test]
fn target_middle_selects_the_named_stage() {
    let (df, target) = case("target-middle");
    assert_eq!(target.as_deref(), Some("test"));
    assert_eq!(df.target(target.as_deref()).unwrap(), 1);
    assert_eq!(df.stages[1].base, Base::Stage(0));
    assert_eq!(df.stages[2].base, Base::Stage(0));
    let targetstage = df
        .global_args
        .iter()
        .find(|(k, _)| k == "TARGETSTAGE")
        .map(|(_, v)| v.as_str());
    assert_eq!(targetstage, Some("test"));
}

#[test]
fn whiteout_opaque_bases() {
    let (df, _) = case("whiteout-opaque");
    assert_eq!(
        shape(&df),
        [
            ("base".into(), image("lab/busybox:1")),
            ("modified".into(), Base::Stage(0)),
            ("stage-2".into(), Base::Stage(1))
        ]
    );
}
