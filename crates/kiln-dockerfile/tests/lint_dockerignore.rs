//! The CopyIgnoredFile check end to end: which `.dockerignore` it reads (per-Dockerfile
//! precedence, patterns given directly) and what it reports. The matcher itself is
//! kiln-context's `IgnoreMatcher`, tested there.

use std::fs;

use kiln_dockerfile::lint::{LintOptions, lint};

const COPY_DOCKERFILE: &str =
    "# check=experimental=CopyIgnoredFile\nFROM scratch\nCOPY Dockerfile .\nCOPY keep .\n";

/// The sources CopyIgnoredFile reports for [`COPY_DOCKERFILE`].
fn ignored_sources(opts: &LintOptions) -> Vec<String> {
    lint(COPY_DOCKERFILE, opts)
        .unwrap()
        .findings
        .iter()
        .map(|f| f.message.split('"').nth(1).unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn dockerfile_specific_ignore_wins() {
    let ctx = tempfile::tempdir().unwrap();
    let dockerfile = ctx.path().join("build").join("app.Dockerfile");
    fs::create_dir_all(dockerfile.parent().unwrap()).unwrap();
    let opts = LintOptions {
        context: Some(ctx.path().to_owned()),
        dockerfile: Some(dockerfile.clone()),
        ..LintOptions::default()
    };
    assert!(ignored_sources(&opts).is_empty());
    fs::write(ctx.path().join(".dockerignore"), "Dockerfile\n").unwrap();
    assert_eq!(ignored_sources(&opts), ["Dockerfile"]);
    fs::write(
        ctx.path().join("build/app.Dockerfile.dockerignore"),
        "keep\n",
    )
    .unwrap();
    assert_eq!(ignored_sources(&opts), ["keep"]);
    // Without a Dockerfile path only the context's file counts.
    let no_path = LintOptions {
        dockerfile: None,
        ..opts.clone()
    };
    assert_eq!(ignored_sources(&no_path), ["Dockerfile"]);
    // Patterns given directly win over both files.
    let direct = LintOptions {
        dockerignore: Some(vec!["./keep/".into(), "Dockerfile".into()]),
        ..opts
    };
    assert_eq!(ignored_sources(&direct), ["Dockerfile", "keep"]);
}

/// The build leaves `d/x` out of the context (BuildKit's sender tests `!d` against `d` and
/// not again against `d/x`), so copying it is reported, though moby's older
/// `MatchesOrParentMatches` would call it re-included.
#[test]
fn copy_ignored_file_follows_the_context_sender() {
    let opts = LintOptions {
        dockerignore: Some(vec!["d/x".into(), "!d".into()]),
        ..LintOptions::default()
    };
    let source = "# check=experimental=CopyIgnoredFile\nFROM scratch\nCOPY d/x /x\nCOPY d /d\n";
    let messages: Vec<String> = lint(source, &opts)
        .unwrap()
        .findings
        .into_iter()
        .map(|f| f.message)
        .collect();
    assert_eq!(
        messages,
        ["Attempting to Copy file \"d/x\" that is excluded by .dockerignore"]
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
