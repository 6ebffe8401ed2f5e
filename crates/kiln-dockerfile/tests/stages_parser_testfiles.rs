//! BuildKit's own parser test Dockerfiles, taken one step further than the parser: through typed
//! instructions and stages. Files that only a full build rejects must fail here, the rest resolve.

use std::collections::BTreeMap;

use kiln_dockerfile::parser;
use kiln_dockerfile::stages::{self, StageOptions};

const DIR: &str = "/work/shared/conformance/buildkit-parser-testfiles/parser/testfiles";

/// The stages result for one case: the number of stages, or the error message.
fn outcome(case: &str) -> Result<usize, String> {
    let src = std::fs::read_to_string(format!("{DIR}/{case}/Dockerfile")).expect("case file");
    let ast = parser::parse(&src).expect("BuildKit's parser accepts these files");
    stages::stages(&ast, &src, &BTreeMap::new(), &StageOptions::default())
        .map(|df| df.stages.len())
        .map_err(|e| e.message)
}

#[test]
fn real_world_dockerfiles_resolve() {
    for case in [
        "nginx",
        "influxdb",
        "znc",
        "mumble",
        "weechat",
        "docker",
        "args",
        "ADD-COPY-with-JSON",
        "multiple-volumes",
    ] {
        assert_eq!(outcome(case), Ok(1), "{case}");
    }
}

#[test]
fn files_a_build_rejects_fail_with_buildkit_messages() {
    assert_eq!(
        outcome("health"),
        Err("HEALTHCHECK requires at least one argument".into())
    );
    assert_eq!(outcome("flags"), Err("unknown flag: --user".into()));
    // CMD before any FROM.
    assert_eq!(
        outcome("json"),
        Err("no build stage in current context".into())
    );
    // `ENV name='a\'b'`: a backslash does not escape inside single quotes.
    assert!(outcome("env").is_err_and(|e| e.contains("single-quote")));
}

#[test]
fn every_case_either_resolves_or_fails_cleanly() {
    let mut count = 0;
    for entry in std::fs::read_dir(DIR).expect("testfiles") {
        let case = entry.unwrap().file_name().into_string().unwrap();
        if let Err(message) = outcome(&case) {
            assert!(!message.is_empty(), "{case}: empty error message");
        }
        count += 1;
    }
    assert!(count >= 30, "found only {count} cases");
}
