//! Parser directives (`# syntax=`, `# escape=`, `# check=`), the escape character and line
//! continuation rules.

#[path = "support/dump.rs"]
mod dump;

use kiln_dockerfile::parser::parse;

fn dumped(source: &str) -> String {
    let ast = parse(source).unwrap_or_else(|e| panic!("{}", e.render("Dockerfile", source)));
    dump::dump(&ast)
}

#[test]
fn directives_are_read_case_insensitively() {
    let ast = parse(
        "# SYNTAX = docker/dockerfile:1.7 \n#Check=skip=all;error=true\n# Escape=`\nFROM a\n",
    )
    .unwrap();
    assert_eq!(
        ast.directives.syntax.as_deref(),
        Some("docker/dockerfile:1.7")
    );
    assert_eq!(ast.directives.check.as_deref(), Some("skip=all;error=true"));
    assert_eq!(ast.directives.escape, '`');
}

#[test]
fn defaults_without_directives() {
    let ast = parse("FROM a\n").unwrap();
    assert_eq!(
        (ast.directives.syntax.clone(), ast.directives.check.clone()),
        (None, None)
    );
    assert_eq!(ast.directives.escape, '\\');
}

#[test]
fn directives_stop_at_first_other_line() {
    for source in [
        "\n# escape=`\nFROM a\nRUN x `\n",
        "# hello\n# escape=`\nFROM a\nRUN x `\n",
        "# unknown=1\n# escape=`\nFROM a\nRUN x `\n",
        "FROM a\n# escape=`\nRUN x `\n",
    ] {
        let ast = parse(source).unwrap();
        assert_eq!(ast.directives.escape, '\\', "{source:?}");
        assert_eq!(
            ast.nodes.last().map(|n| n.args[0].value.as_str()),
            Some("x `")
        );
    }
}

#[test]
fn backtick_escape_changes_continuation_and_words() {
    let source = "# escape=`\nFROM a\nRUN dir c:\\ `\n  && echo hi\nENV P=c:\\x` y\n";
    assert_eq!(
        dumped(source),
        "(from \"a\")\n(run \"dir c:\\\\   && echo hi\")\n(env \"P\" \"c:\\\\x` y\" \"=\")\n"
    );
}

#[test]
fn bom_is_stripped_before_directives() {
    let ast = parse("\u{feff}# escape=`\nFROM a `\n  b\n").unwrap();
    assert_eq!(ast.directives.escape, '`');
    assert_eq!(dump::dump(&ast), "(from \"a\" \"b\")\n");
    assert_eq!(ast.nodes[0].keyword_span.start, 14);
}

#[test]
fn invalid_escape_is_an_error_at_its_value() {
    let source = "# escape=x\nFROM a\n";
    let err = parse(source).unwrap_err();
    assert_eq!(
        err.message,
        "invalid escape token 'x' does not match ` or \\"
    );
    assert_eq!(&source[err.span.start..err.span.end], "x");
    assert!(
        err.render("Dockerfile", source)
            .starts_with("Dockerfile:1:10: invalid escape token")
    );
}

#[test]
fn repeated_directive_is_an_error() {
    let err = parse("# syntax=a\n# SYNTAX=b\nFROM a\n").unwrap_err();
    assert_eq!(err.message, "only one syntax parser directive can be used");
    assert_eq!(err.line_col("# syntax=a\n# SYNTAX=b\nFROM a\n"), (2, 10));
}

#[test]
fn empty_continuation_lines_warn() {
    let source = "FROM a\nRUN echo \\\n\n  hi \\\n   \n  there\n";
    let ast = parse(source).unwrap();
    assert_eq!(
        dump::dump(&ast).lines().nth(1),
        Some("(run \"echo   hi   there\")")
    );
    assert_eq!(ast.warnings.len(), 1);
    let warning = &ast.warnings[0];
    assert_eq!(warning.rule, Some("NoEmptyContinuation"));
    assert_eq!(
        warning.message,
        "Empty continuation line found in: RUN echo   hi   there"
    );
    assert_eq!(warning.line, 6);
    assert_eq!(warning.span.start, source.find("\n\n").unwrap() + 1);
}

#[test]
fn comment_lines_inside_continuation_do_not_warn() {
    let ast = parse("FROM a\nRUN a \\\n  # note\n  b\n").unwrap();
    assert!(ast.warnings.is_empty());
    assert_eq!(dump::dump(&ast).lines().nth(1), Some("(run \"a   b\")"));
    assert_eq!((ast.nodes[1].start_line, ast.nodes[1].end_line), (2, 4));
}

#[test]
fn doubled_escape_at_end_does_not_continue() {
    assert_eq!(dumped("FROM a\nENV C x\\\\\nENV D y\n").lines().count(), 3);
}

#[test]
fn continuation_at_end_of_file() {
    let ast = parse("FROM a\nRUN x \\\n").unwrap();
    assert_eq!(dump::dump(&ast), "(from \"a\")\n(run \"x\")\n");
    assert_eq!(ast.nodes[1].end_line, 2);
}

#[test]
fn lone_escape_makes_an_empty_instruction() {
    let ast = parse("\\\n").unwrap();
    assert_eq!(ast.nodes.len(), 1);
    assert_eq!(ast.nodes[0].keyword, "");
}

#[test]
fn crlf_line_endings_are_trimmed() {
    let source = "FROM a\r\nRUN x \\\r\n  y\r\n";
    let ast = parse(source).unwrap();
    assert_eq!(dump::dump(&ast), "(from \"a\")\n(run \"x   y\")\n");
    assert_eq!((ast.nodes[1].start_line, ast.nodes[1].end_line), (2, 3));
}

#[test]
fn comments_above_an_instruction_are_kept() {
    let source =
        "# syntax=x\n# stage one\n\n  # builds it\nFROM a AS b\n#\n# only this\nARG X\nRUN y\n";
    let ast = parse(source).unwrap();
    assert_eq!(ast.nodes[0].comments, ["stage one", "# builds it"]);
    assert_eq!(ast.nodes[1].comments, ["only this"]);
    assert!(ast.nodes[2].comments.is_empty());
}

#[test]
fn empty_continuation_warning_is_on_the_last_instruction_line() {
    let source = "FROM a\nRUN cat \\\n\n  <<EOF\nhi\nEOF\n";
    let ast = parse(source).unwrap();
    assert_eq!(ast.warnings[0].line, 4);
    assert_eq!(ast.nodes[1].end_line, 6);
}
