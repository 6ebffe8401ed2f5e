//! `.dockerignore` table tests from moby's documented behaviour.

use std::fs;

use kiln_context::{Error, IgnoreMatcher};

fn excluded(rules: &str, path: &str) -> bool {
    IgnoreMatcher::parse(rules)
        .unwrap_or_else(|e| panic!("rules {rules:?} failed to parse: {e}"))
        .is_excluded(path)
}

#[test]
fn table() {
    let cases: &[(&str, &str, bool)] = &[
        // Plain names, and the parent-directory rule.
        ("docs", "docs", true),
        ("docs", "docs/readme.md", true),
        ("docs", "docs/a/b/c", true),
        ("docs", "mydocs", false),
        ("docs", "other/docs", false),
        ("docs/", "docs/x", true),
        ("/docs", "docs/x", true),
        ("./docs", "docs", true),
        ("a/../docs", "docs", true),
        // `*` and `?` stay within one component.
        ("*", "anything", true),
        ("*", "dir/file", true),
        ("*.go", "main.go", true),
        ("*.go", "pkg/main.go", false),
        ("*/temp*", "somedir/temporary.txt", true),
        ("*/temp*", "temp.txt", false),
        ("*/*/temp*", "a/b/temp.txt", true),
        ("*/*/temp*", "a/temp.txt", false),
        ("temp?", "temp1", true),
        ("temp?", "temp12", false),
        ("temp?", "temp", false),
        // `**` spans any number of directories, including none.
        ("**/*.go", "main.go", true),
        ("**/*.go", "a/b/c.go", true),
        ("**/foo", "foo", true),
        ("**/foo", "x/y/foo", true),
        ("**/foo", "afoo", false),
        ("**foo", "barfoo", true),
        ("a/**", "a/b", true),
        ("a/**", "a/b/c", true),
        ("a/**", "ab", false),
        ("a/**/b", "a/b", true),
        ("a/**/b", "a/x/y/b", true),
        ("a/**/b", "a/x/c", false),
        ("**", "x/y", true),
        // Classes, negation, ranges, escapes; regex specials are literal.
        ("[a-c]*", "banana", true),
        ("[a-c]*", "date", false),
        ("[^a-c]*", "date", true),
        ("[^a-c]*", "apple", false),
        ("file\\*", "file*", true),
        ("file\\*", "filex", false),
        ("a.b", "axb", false),
        ("a.b", "a.b", true),
        ("a+(b)", "a+(b)", true),
        ("x{1}$", "x{1}$", true),
        // Comments only in column 0; whitespace is trimmed.
        ("# docs", "# docs", false),
        ("# docs", "docs", false),
        ("  #hash  ", "#hash", true),
        ("  spaced  ", "spaced", true),
        ("\u{feff}bom", "bom", true),
        ("crlf\r\nother", "crlf", true),
        ("", "anything", false),
        // Last match wins; `!` re-includes.
        ("*.md\n!README.md", "README.md", false),
        ("*.md\n!README.md", "CHANGES.md", true),
        (
            "*.md\n!README*.md\nREADME-secret.md",
            "README-secret.md",
            true,
        ),
        (
            "*.md\n!README*.md\nREADME-secret.md",
            "README-public.md",
            false,
        ),
        ("!README.md\n*.md", "README.md", true),
        ("**\n!keep", "keep", false),
        ("**\n!keep", "drop", true),
        ("! /spaced", "spaced", false),
        // Exceptions under an excluded directory.
        ("dir\n!dir/keep", "dir/keep", false),
        ("dir\n!dir/keep", "dir/keep/inner", false),
        ("dir\n!dir/keep", "dir/other", true),
        ("dir\n!dir/keep", "dir", true),
        // A wildcard exception makes BuildKit walk every excluded directory.
        ("dir\n!*/keep", "dir/keep", false),
        ("dir\n!*/keep", "dir/other", true),
        // Without one, only directories an exception lies under are walked.
        ("dir\n!other/keep", "dir/other/keep", true),
        ("dir\n!dir/keep/**", "dir/keep/x", false),
        // Further cases from patternmatcher's documented behaviour.
        (".*", ".foo", true),
        (".*", "foo", false),
        ("**/.foo", "bar.foo", false),
        ("a(b)c/def", "a(b)c/def", true),
        ("a(b)c/def", "a(b)c/xyz", false),
        ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
        ("a\\\\", "a\\", true),
        ("a**/*.txt", "a/dir/dir/file.txt", true),
        ("**/dir2/**", "dir/dir2/dir3/file", true),
        ("**/**/*.txt2", "dir/dir/file.txt", false),
        ("abc/**", "abc", false),
        (
            "dist/*.whl",
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            true,
        ),
        ("**\n!util/docker/web", "util/docker/web/foo", false),
        (
            "**\n!util/docker/web\nutil/docker/web/foo",
            "util/docker/web/foo",
            true,
        ),
        ("docs/*\n!docs/README.md", "docs/README.md", false),
        // Cases carried over from kiln-dockerfile's lint matcher.
        ("docs", "docsx", false),
        ("a?c", "abc", true),
        ("a?c", "a/c", false),
        ("*/tmp/*", "x/tmp/y", true),
        ("*/tmp/*", "x/tmp/y/z", true),
        ("*/tmp/*", "tmp/y", false),
        ("./a/../b/", "b/c", true),
        ("**.md", "a/b.md", true),
        ("**.md", "b.md", true),
        ("x/*/**", "x/a/b/c", true),
        ("x/*/**", "x/a", false),
        ("[a-c]?", "bz", true),
        ("[a-c]?", "dz", false),
        ("[a-c]*.go", "b.go", true),
        ("[a-c]*.go", "d.go", false),
        ("[^a]*", "b", true),
        ("[^a]b", "cb", true),
        ("\\*", "*", true),
        ("\\*x", "*x", true),
        ("*.txt\n!a.txt\na*", "a.txt", true),
        ("/foo", "foo/x", true),
        ("/foo", "bar/foo", false),
        ("qux\n!/baz/../qux", "qux", false),
        ("docs\n!docs/keep.txt", "docs/other.txt", true),
        // moby hands brackets to Go's regexp verbatim: inside a class `[`, `&`
        // and `~` are plain, `[:alpha:]` is a POSIX class, and a `*` in a
        // class becomes `[^/]*`, whose `]` closes the class early.
        ("[[]", "[", true),
        ("[[]", "a", false),
        ("[a&&b]", "&", true),
        ("[a&&b]", "a", true),
        ("[a&&b]", "c", false),
        ("[a~~b]", "~", true),
        ("[[:alpha:]]", "a", true),
        ("[[:alpha:]]", "1", false),
        ("[*]", "]", true),
        ("[*]", "[]", true),
        ("[*]", "*", false),
        ("[^*]", "x]", true),
        ("[^*]", "a", false),
        ("a]", "a]", true),
        // A leading `**` is a suffix test only while nothing later needs the
        // regular expression.
        ("**[ab]", "x/a", true),
        ("**[ab]", "xa", false),
        // Patterns that never match relative paths.
        ("/", "x", false),
        (".", "x", false),
        ("../x", "x", false),
    ];
    let mut failures = Vec::new();
    for &(rules, path, want) in cases {
        if excluded(rules, path) != want {
            failures.push(format!("{rules:?} on {path:?}: expected excluded={want}"));
        }
    }
    assert!(failures.is_empty(), "mismatches:\n{}", failures.join("\n"));
}

/// BuildKit matches with parent results: a pattern skipped at the parent is
/// later tested against the child path alone, not its ancestors.
#[test]
fn parent_results_semantics() {
    assert!(excluded("d/x\n!d", "d/x"));
    assert!(!excluded("d/x\n!d", "d"));
}

#[test]
fn may_contain_included_uses_exception_prefixes() {
    let m = IgnoreMatcher::parse("dir\n!dir/sub/keep\nother").unwrap();
    assert!(m.may_contain_included("dir"));
    assert!(m.may_contain_included("dir/sub"));
    assert!(!m.may_contain_included("other"));
    assert!(!m.may_contain_included("di"));
    let no_exceptions = IgnoreMatcher::parse("dir").unwrap();
    assert!(!no_exceptions.may_contain_included("dir"));
    // Trailing `/**` and `/*` are stripped before the prefix test.
    let trailing = IgnoreMatcher::parse("dir\n!dir/sub/**\n!lib/*").unwrap();
    assert!(trailing.may_contain_included("dir/sub"));
    assert!(trailing.may_contain_included("lib"));
    assert!(!trailing.may_contain_included("other"));
    // Any other wildcard in an exception means every directory is walked.
    for rules in ["dir\n!*.md", "dir\n!a/[bc]", "dir\n!x?", "dir\n!**/keep/*"] {
        let walk_all = IgnoreMatcher::parse(rules).unwrap();
        assert!(walk_all.may_contain_included("anything"), "{rules:?}");
    }
}

/// Patterns given one by one (moby's `patternmatcher.New`): trimmed, cleaned
/// with any `!` still in front (so `!./b/../c/` keeps a `./`), blanks
/// skipped, no comments, and a leading `/` kept.
#[test]
fn from_patterns_compiles_each_pattern() {
    let m = IgnoreMatcher::from_patterns(&["a", " ", "!./b/../c/", "#x", "/d"]).unwrap();
    let view: Vec<(&str, bool)> = m.patterns().collect();
    assert_eq!(
        view,
        [("a", false), ("./c", true), ("#x", false), ("/d", false)]
    );
    assert!(m.is_excluded("a/x"));
    assert!(m.is_excluded("#x"));
    assert!(!m.is_excluded("d"));
    assert!(
        IgnoreMatcher::from_patterns::<&str>(&[])
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        IgnoreMatcher::from_patterns(&["!"]),
        Err(Error::IllegalExclusion)
    ));
    assert!(matches!(
        IgnoreMatcher::from_patterns(&["a[b"]),
        Err(Error::BadIgnorePattern { .. })
    ));
}

#[test]
fn patterns_report_cleaned_text_and_exceptions() {
    let m = IgnoreMatcher::parse(
        "\u{feff}# comment\n\n  /foo  \n./bar/\n!/baz/../qux\n #not-a-comment\r\n!  spaced\n",
    )
    .unwrap();
    let view: Vec<(&str, bool)> = m.patterns().collect();
    assert_eq!(
        view,
        [
            ("foo", false),
            ("bar", false),
            ("qux", true),
            ("#not-a-comment", false),
            ("spaced", true),
        ]
    );
}

#[test]
fn clean_is_go_path_clean() {
    assert_eq!(kiln_context::clean("./a/../b/"), "b");
    assert_eq!(kiln_context::clean("/../x"), "/x");
    assert_eq!(kiln_context::clean("../../x"), "../../x");
    assert_eq!(kiln_context::clean(""), ".");
}

#[test]
fn malformed_patterns_are_errors() {
    assert!(matches!(
        IgnoreMatcher::parse("!"),
        Err(Error::IllegalExclusion)
    ));
    assert!(matches!(
        IgnoreMatcher::parse("  !  "),
        Err(Error::IllegalExclusion)
    ));
    for bad in ["[", "a[b", "x\\", "[]a]", "[z-]", "[]", "[a-]"] {
        assert!(
            matches!(
                IgnoreMatcher::parse(bad),
                Err(Error::BadIgnorePattern { .. })
            ),
            "{bad:?} must be rejected"
        );
    }
}

#[test]
fn dockerfile_specific_ignore_wins() {
    let ctx = tempfile::tempdir().unwrap();
    fs::create_dir(ctx.path().join("build")).unwrap();
    fs::write(ctx.path().join(".dockerignore"), "from-context\n").unwrap();
    fs::write(
        ctx.path().join("build/app.Dockerfile.dockerignore"),
        "from-dockerfile\n",
    )
    .unwrap();
    let specific =
        IgnoreMatcher::from_context(ctx.path(), &ctx.path().join("build/app.Dockerfile")).unwrap();
    assert!(specific.is_excluded("from-dockerfile"));
    assert!(!specific.is_excluded("from-context"));
    let plain = IgnoreMatcher::from_context(ctx.path(), &ctx.path().join("Dockerfile")).unwrap();
    assert!(plain.is_excluded("from-context"));
    assert!(!plain.is_excluded("from-dockerfile"));
}

#[test]
fn dockerignore_symlink_outside_context_is_not_followed() {
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("rules"), "secret\n").unwrap();
    let ctx = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("rules"),
        ctx.path().join(".dockerignore"),
    )
    .unwrap();
    let m = IgnoreMatcher::from_context(ctx.path(), &ctx.path().join("Dockerfile")).unwrap();
    assert!(m.is_empty(), "rules from outside the context were read");
    assert!(!m.is_excluded("secret"));
}
