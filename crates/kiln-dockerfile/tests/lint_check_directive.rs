//! `# check=` (and the `BUILDKIT_DOCKERFILE_CHECK` build-arg): skipping rules, `error=true`,
//! experimental rules and invalid values. Cases follow BuildKit's `testRuleCheckOption`.

use std::collections::BTreeMap;

use kiln_dockerfile::lint::{CHECK_BUILD_ARG, Level, LintOptions, lint};

const BODY: &str = "FROM scratch as base\ncopy Dockerfile .\n";

fn rules_fired(source: &str, opts: &LintOptions) -> Vec<&'static str> {
    lint(source, opts)
        .unwrap()
        .findings
        .iter()
        .map(|f| f.rule)
        .collect()
}

#[test]
fn without_directive_both_casing_rules_fire() {
    let fired = rules_fired(&format!("\n{BODY}"), &LintOptions::default());
    assert_eq!(fired, ["FromAsCasing", "ConsistentInstructionCasing"]);
}

#[test]
fn skip_all_and_skip_lists() {
    let opts = LintOptions::default();
    assert!(rules_fired(&format!("#check=skip=all\n{BODY}"), &opts).is_empty());
    let both = format!("#check=skip=ConsistentInstructionCasing,FromAsCasing\n{BODY}");
    assert!(rules_fired(&both, &opts).is_empty());
    let one = format!("# check=skip=ConsistentInstructionCasing\n{BODY}");
    assert_eq!(rules_fired(&one, &opts), ["FromAsCasing"]);
}

#[test]
fn error_true_makes_findings_fatal() {
    let source = format!("#check=skip=ConsistentInstructionCasing;error=true\n{BODY}");
    let report = lint(&source, &LintOptions::default()).unwrap();
    assert!(report.error);
    assert_eq!(report.findings.len(), 1);
    assert_eq!(report.findings[0].level, Level::Error);
    assert_eq!(report.findings[0].line, 2);
    assert_eq!(
        report.violation_message().as_deref(),
        Some("lint violation found for rules: FromAsCasing")
    );
}

#[test]
fn error_true_with_nothing_fired_is_not_an_error() {
    let report = lint(
        &format!("#check=skip=all;error=true\n{BODY}"),
        &LintOptions::default(),
    )
    .unwrap();
    assert!(!report.error);
    assert!(report.findings.is_empty());
    assert_eq!(report.violation_message(), None);
    let clean = lint(
        "# check=error=true\nFROM scratch\n",
        &LintOptions::default(),
    )
    .unwrap();
    assert!(!clean.error);
}

#[test]
fn build_arg_overrides_the_directive() {
    let opts = LintOptions {
        build_args: BTreeMap::from([(
            CHECK_BUILD_ARG.to_owned(),
            "skip=ConsistentInstructionCasing;error=true".to_owned(),
        )]),
        ..LintOptions::default()
    };
    let report = lint(&format!("#check=skip=all\n{BODY}"), &opts).unwrap();
    assert!(report.error);
    assert_eq!(
        report.findings.iter().map(|f| f.rule).collect::<Vec<_>>(),
        ["FromAsCasing"]
    );
}

#[test]
fn kiln_rules_can_be_skipped_too() {
    let source = "# check=skip=FromVariableNotPortable\nFROM scratch AS a\nFROM scratch\nARG S=a\nCOPY --from=$S /x /x\n";
    assert!(rules_fired(source, &LintOptions::default()).is_empty());
}

#[test]
fn experimental_rules_need_enabling_even_under_skip_all() {
    let opts = LintOptions {
        dockerignore: Some(vec!["Dockerfile".into()]),
        ..LintOptions::default()
    };
    let body = "FROM scratch\nCOPY Dockerfile .\n";
    assert!(rules_fired(body, &opts).is_empty());
    let on = format!("# check=experimental=CopyIgnoredFile\n{body}");
    assert_eq!(rules_fired(&on, &opts), ["CopyIgnoredFile"]);
    let skip_all = format!("# check=skip=all;experimental=all\n{body}");
    assert_eq!(rules_fired(&skip_all, &opts), ["CopyIgnoredFile"]);
}

#[test]
fn invalid_values_are_clear_errors() {
    let err = lint(
        "# check=error=maybe\nFROM scratch\n",
        &LintOptions::default(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to parse check options: failed to parse check option \"error=maybe\": strconv.ParseBool: parsing \"maybe\": invalid syntax"
    );
    let err = lint("# check=skipp=all\nFROM scratch\n", &LintOptions::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to parse check options: invalid check option \"skipp\""
    );
    let err = lint("# check=skip\nFROM scratch\n", &LintOptions::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to parse check options: invalid check option \"skip\""
    );
    match err {
        kiln_dockerfile::lint::LintError::Dockerfile(e) => {
            assert_eq!((e.span.start, e.span.end), (8, 12))
        }
        other => panic!("unexpected error kind: {other}"),
    }
}
