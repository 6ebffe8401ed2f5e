//! Text and JSON output of the findings, shaped like `docker build --check` and
//! `docker build --call=check,format=json`.

use kiln_dockerfile::lint::{LintOptions, lint, render_json, render_text};
use serde_json::json;

const SOURCE: &str =
    "#check=skip=ConsistentInstructionCasing\nFROM scratch as base\ncopy Dockerfile .\n";

#[test]
fn text_shows_rule_url_message_and_source() {
    let report = lint(SOURCE, &LintOptions::default()).unwrap();
    let text = render_text(&report, "Dockerfile", SOURCE);
    let expected = "\
WARNING: FromAsCasing - https://docs.docker.com/go/dockerfile/rule/from-as-casing/
'as' and 'FROM' keywords' casing do not match
Dockerfile:2
--------------------
   1 |     #check=skip=ConsistentInstructionCasing
   2 | >>> FROM scratch as base
   3 |     copy Dockerfile .
   4 |     
--------------------
";
    assert_eq!(text, expected);
}

#[test]
fn text_marks_every_line_of_a_long_instruction() {
    let source = "FROM scratch\nENV a \\\n  b\nLABEL x=y\nLABEL z=w\n";
    let report = lint(source, &LintOptions::default()).unwrap();
    let text = render_text(&report, "Dockerfile", source);
    assert!(
        text.starts_with("WARNING: LegacyKeyValueFormat - "),
        "{text}"
    );
    assert!(text.contains("Dockerfile:2\n--------------------\n   1 |     FROM scratch\n   2 | >>> ENV a \\\n   3 | >>>   b\n   4 |     LABEL x=y\n--------------------\n"), "{text}");
}

#[test]
fn error_level_and_kiln_rules_without_url() {
    let source =
        "# check=error=true\nFROM scratch AS a\nFROM scratch\nARG S=a\nCOPY --from=$S /x /x\n";
    let report = lint(source, &LintOptions::default()).unwrap();
    let text = render_text(&report, "df", source);
    assert!(
        text.starts_with("ERROR: FromVariableNotPortable\nCOPY --from=$S uses a variable"),
        "{text}"
    );
    assert!(text.contains("df:5\n"), "{text}");
}

#[test]
fn text_ends_with_the_build_error() {
    let source = "FROM --platform=$NOPE scratch\n";
    let report = lint(source, &LintOptions::default()).unwrap();
    let text = render_text(&report, "Dockerfile", source);
    assert!(
        text.contains("\nERROR: empty platform value from expression $NOPE\nDockerfile:1\n"),
        "{text}"
    );
}

#[test]
fn json_matches_buildx_check_format() {
    let report = lint(SOURCE, &LintOptions::default()).unwrap();
    let value = render_json(&report, "Dockerfile");
    assert_eq!(
        value,
        json!({
            "warnings": [{
                "ruleName": "FromAsCasing",
                "description": "The 'as' keyword should match the case of the 'from' keyword",
                "url": "https://docs.docker.com/go/dockerfile/rule/from-as-casing/",
                "detail": "'as' and 'FROM' keywords' casing do not match",
                "location": {
                    "sourceIndex": 0,
                    "ranges": [{"start": {"line": 2, "character": 0}, "end": {"line": 2, "character": 0}}],
                },
            }],
            "sources": [{"filename": "Dockerfile", "language": "Dockerfile"}],
        })
    );
}

#[test]
fn json_carries_the_build_error() {
    let report = lint("FROM --platform=$NOPE scratch\n", &LintOptions::default()).unwrap();
    let value = render_json(&report, "Dockerfile");
    assert_eq!(
        value["buildError"]["message"],
        "empty platform value from expression $NOPE"
    );
    assert_eq!(value["warnings"][0]["ruleName"], "UndefinedArgInFrom");
}
