//! The `.dockerignore` matcher (moby's patternmatcher semantics), reading ignore files with the
//! per-Dockerfile precedence, and the CopyIgnoredFile check that uses them.

use std::fs;

use kiln_dockerfile::lint::dockerignore::{Matcher, parse, read_patterns};
use kiln_dockerfile::lint::{LintOptions, lint};

/// `(patterns, path, excluded)`.
const TABLE: &[(&[&str], &str, bool)] = &[
    (&["*.md"], "README.md", true),
    (&["*.md"], "docs/README.md", false),
    (&["**/*.md"], "docs/a/README.md", true),
    (&["**/*.md"], "README.md", true),
    (&["**"], "any/thing", true),
    (&["dir/**"], "dir/x/y", true),
    (&["dir/**"], "dir", false),
    (&["docs"], "docs/a.txt", true),
    (&["docs/"], "docs/a.txt", true),
    (&["docs"], "docsx", false),
    (&["docs", "!docs/keep.txt"], "docs/keep.txt", false),
    (&["docs", "!docs/keep.txt"], "docs/other.txt", true),
    (&["!a.txt", "*.txt"], "a.txt", true),
    (&["*.txt", "!a.txt"], "a.txt", false),
    (&["*.txt", "!a.txt", "a*"], "a.txt", true),
    (&["a?c"], "abc", true),
    (&["a?c"], "a/c", false),
    (&["[a-c]*.go"], "b.go", true),
    (&["[a-c]*.go"], "d.go", false),
    (&["[^a]*"], "b", true),
    (&["\\*"], "*", true),
    (&["\\*"], "x", false),
    (&["a.b"], "axb", false),
    (&["*/tmp/*"], "x/tmp/y", true),
    (&["*/tmp/*"], "tmp/y", false),
    (&["./a/../b/"], "b/c", true),
    // moby's shortcut for a leading `**` followed by plain text is a suffix test.
    (&["**.md"], "a/b.md", true),
    (&["**foo"], "barfoo", true),
    (&["**/foo"], "foo", true),
    (&["**/foo"], "a/foo", true),
    (&["**/foo"], "xfoo", false),
    (&["x/**"], "x/y", true),
    (&["x/**"], "xy", false),
];

#[test]
fn matcher_table() {
    for (patterns, path, want) in TABLE {
        let m = Matcher::new(patterns).unwrap_or_else(|e| panic!("{patterns:?}: {e}"));
        assert_eq!(
            m.matches_or_parent_matches(path),
            *want,
            "{patterns:?} on {path}"
        );
    }
}

#[test]
fn parse_cleans_and_skips_comments() {
    let content =
        "\u{feff}# comment\n\n  /foo  \n./bar/\n!/baz/../qux\n #not-a-comment\r\n!  spaced\n";
    assert_eq!(
        parse(content),
        ["foo", "bar", "!qux", "#not-a-comment", "!spaced"]
    );
    let m = Matcher::new(&parse("/foo\n")).unwrap();
    assert!(m.matches_or_parent_matches("foo/x"));
    assert!(!m.matches_or_parent_matches("bar/foo"));
}

#[test]
fn patterns_report_text_and_exceptions() {
    let m = Matcher::new(&["a", " ", "!b/c"]).unwrap();
    let view: Vec<(&str, bool)> = m
        .patterns()
        .iter()
        .map(|p| (p.text(), p.exclusion()))
        .collect();
    assert_eq!(view, [("a", false), ("b/c", true)]);
}

#[test]
fn malformed_patterns_are_errors() {
    for bad in ["[", "a[b", "x\\", "!"] {
        let err = Matcher::new(&[bad]).unwrap_err();
        assert!(
            err.to_string().starts_with("invalid .dockerignore pattern"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn dockerfile_specific_ignore_wins() {
    let ctx = tempfile::tempdir().unwrap();
    let dockerfile = ctx.path().join("build").join("app.Dockerfile");
    fs::create_dir_all(dockerfile.parent().unwrap()).unwrap();
    assert_eq!(read_patterns(ctx.path(), Some(&dockerfile)).unwrap(), None);
    fs::write(ctx.path().join(".dockerignore"), "from-context\n").unwrap();
    assert_eq!(
        read_patterns(ctx.path(), Some(&dockerfile)).unwrap(),
        Some(vec!["from-context".to_owned()])
    );
    fs::write(
        ctx.path().join("build/app.Dockerfile.dockerignore"),
        "specific\n",
    )
    .unwrap();
    assert_eq!(
        read_patterns(ctx.path(), Some(&dockerfile)).unwrap(),
        Some(vec!["specific".to_owned()])
    );
    assert_eq!(
        read_patterns(ctx.path(), None).unwrap(),
        Some(vec!["from-context".to_owned()])
    );
}

#[test]
fn copy_ignored_file_reads_the_context() {
    let ctx = tempfile::tempdir().unwrap();
    fs::write(ctx.path().join(".dockerignore"), "\nDockerfile\n").unwrap();
    let opts = LintOptions {
        context: Some(ctx.path().to_owned()),
        ..LintOptions::default()
    };
    let source = "# check=experimental=CopyIgnoredFile\nFROM scratch\nCOPY Dockerfile .\nADD ./Dockerfile /windy\n";
    let report = lint(source, &opts).unwrap();
    let got: Vec<(&str, &str, usize)> = report
        .findings
        .iter()
        .map(|f| (f.rule, f.message.as_str(), f.line))
        .collect();
    assert_eq!(
        got,
        [
            (
                "CopyIgnoredFile",
                "Attempting to Copy file \"Dockerfile\" that is excluded by .dockerignore",
                3
            ),
            (
                "CopyIgnoredFile",
                "Attempting to Add file \"Dockerfile\" that is excluded by .dockerignore",
                4
            ),
        ]
    );
    assert_eq!(
        report.findings[0].url,
        "https://docs.docker.com/go/dockerfile/rule/copy-ignored-file/"
    );
}

#[test]
fn copy_ignored_file_ignores_stage_copies_and_kept_files() {
    let opts = LintOptions {
        dockerignore: Some(vec!["foobar".into()]),
        ..LintOptions::default()
    };
    let source = "# check=experimental=CopyIgnoredFile\nFROM scratch AS base\nCOPY Dockerfile /foobar\n\nFROM base\nCOPY --from=base /foobar /Dockerfile\n";
    assert!(lint(source, &opts).unwrap().findings.is_empty());
}

#[test]
fn bad_ignore_file_is_an_error() {
    let opts = LintOptions {
        dockerignore: Some(vec!["[".into()]),
        ..LintOptions::default()
    };
    let err = lint("# check=experimental=all\nFROM scratch\n", &opts).unwrap_err();
    assert!(
        matches!(err, kiln_dockerfile::lint::LintError::Dockerignore(_)),
        "{err}"
    );
}
