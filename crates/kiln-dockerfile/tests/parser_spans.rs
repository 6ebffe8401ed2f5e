//! Byte spans of keywords, flags and words (across continuation lines), and errors that point
//! at the offending text with `Dockerfile:LINE:COL`.

#[path = "support/dump.rs"]
mod dump;

use kiln_dockerfile::ast::Span;
use kiln_dockerfile::parser::parse;

fn text(source: &str, span: Span) -> &str {
    &source[span.start..span.end]
}

#[test]
fn keyword_flag_and_arg_spans() {
    let source = "FROM a\n  copy --from=build \\\n    --chown=1:1 src \\\n  /dst\n";
    let ast = parse(source).unwrap();
    let copy = &ast.nodes[1];
    assert_eq!(text(source, copy.keyword_span), "copy");
    assert_eq!(copy.keyword, "copy");
    let flags: Vec<&str> = copy.flags.iter().map(|f| text(source, f.span)).collect();
    assert_eq!(flags, ["--from=build", "--chown=1:1"]);
    let args: Vec<&str> = copy.args.iter().map(|w| text(source, w.span)).collect();
    assert_eq!(args, ["src", "/dst"]);
    assert_eq!(
        text(source, copy.span),
        "copy --from=build \\\n    --chown=1:1 src \\\n  /dst"
    );
    assert_eq!(
        copy.original,
        "copy --from=build     --chown=1:1 src   /dst"
    );
    assert_eq!((copy.start_line, copy.end_line), (2, 4));
}

#[test]
fn shell_form_word_spans_the_joined_text() {
    let source = "RUN echo a \\\n  b\n";
    let ast = parse(source).unwrap();
    let arg = &ast.nodes[0].args[0];
    assert_eq!(arg.value, "echo a   b");
    assert_eq!(text(source, arg.span), "echo a \\\n  b");
}

#[test]
fn json_element_spans_include_quotes() {
    let source = "CMD [\"a\\tb\", \"c\"]\n";
    let ast = parse(source).unwrap();
    let node = &ast.nodes[0];
    assert!(node.json);
    let raw: Vec<&str> = node.args.iter().map(|w| text(source, w.span)).collect();
    assert_eq!(raw, ["\"a\\tb\"", "\"c\""]);
    assert_eq!(node.args[0].value, "a\tb");
}

#[test]
fn env_triples_have_key_value_and_separator_spans() {
    let source = "ENV a=1 b=\"x y\"\nLABEL k v w\n";
    let ast = parse(source).unwrap();
    let env: Vec<&str> = ast.nodes[0]
        .args
        .iter()
        .map(|w| text(source, w.span))
        .collect();
    assert_eq!(env, ["a", "1", "=", "b", "\"x y\"", "="]);
    let label: Vec<(&str, &str)> = ast.nodes[1]
        .args
        .iter()
        .map(|w| (w.value.as_str(), text(source, w.span)))
        .collect();
    assert_eq!(label, [("k", "k"), ("v w", "v w"), ("", "")]);
}

#[test]
fn parse_modes_per_keyword() {
    let source = "\
ARG a=\"1 2\" b
FROM --platform=$P img AS x
user root: staff
WORKDIR /a b
MAINTAINER Jane Doe
STOPSIGNAL SIGKILL
EXPOSE 80/tcp\t443
SHELL [\"sh\", \"-c\"]
VOLUME /a /b
HEALTHCHECK --interval=1s CMD [\"true\"]
HEALTHCHECK NONE
ONBUILD --x ADD . /src  
COPY -- --weird /dst
FOOBAR some args
";
    let expected = "\
(arg \"a=\\\"1 2\\\"\" \"b\")
(from [\"--platform=$P\"] \"img\" \"AS\" \"x\")
(user \"root: staff\")
(workdir \"/a b\")
(maintainer \"Jane Doe\")
(stopsignal \"SIGKILL\")
(expose \"80/tcp\" \"443\")
(shell \"sh\" \"-c\")
(volume \"/a\" \"/b\")
(healthcheck [\"--interval=1s\"] \"CMD\" \"true\")
(healthcheck \"NONE\")
(onbuild [\"--x\"] (add \".\" \"/src\"))
(copy \"--weird\" \"/dst\")
(foobar)
";
    let ast = parse(source).unwrap();
    assert_eq!(dump::dump(&ast), expected);
    assert!(ast.nodes[9].json, "HEALTHCHECK CMD [..] is exec form");
    let trigger = ast.nodes[11].next.as_deref().unwrap();
    assert_eq!(text(source, trigger.keyword_span), "ADD");
    assert_eq!(trigger.original, "ADD . /src");
}

#[test]
fn quoted_flag_values_are_unquoted() {
    let source = "RUN --mount=\"type=cache,target=/a b\" echo\n";
    let ast = parse(source).unwrap();
    let flag = &ast.nodes[0].flags[0];
    assert_eq!(flag.text, "--mount=type=cache,target=/a b");
    assert_eq!(
        text(source, flag.span),
        "--mount=\"type=cache,target=/a b\""
    );
}

#[test]
fn env_without_value_points_at_the_name() {
    let source = "FROM a\nENV  PATH\n";
    let err = parse(source).unwrap_err();
    assert_eq!(err.message, "ENV must have two arguments");
    assert_eq!(text(source, err.span), "PATH");
    let rendered = err.render("Dockerfile", source);
    assert_eq!(
        rendered,
        "Dockerfile:2:6: ENV must have two arguments\n    2 | ENV  PATH\n      |      ^^^^"
    );
}

#[test]
fn missing_equals_points_at_the_word() {
    let source = "LABEL a=b c d=e\n";
    let err = parse(source).unwrap_err();
    assert!(
        err.message
            .starts_with("Syntax error - can't find = in \"c\""),
        "{}",
        err.message
    );
    assert_eq!(text(source, err.span), "c");
}

#[test]
fn non_string_json_points_at_the_array() {
    let source = "FROM a\nENTRYPOINT [\"a\", 1]\n";
    let err = parse(source).unwrap_err();
    assert_eq!(text(source, err.span), "[\"a\", 1]");
    assert_eq!(err.line_col(source), (2, 12));
}

#[test]
fn empty_and_comment_only_files_fail_at_end() {
    for source in ["", "\n\n", "# a\n# b\n", "  \t\n"] {
        let err = parse(source).unwrap_err();
        assert_eq!(err.message, "file with no instructions");
        assert_eq!(
            err.span,
            Span {
                start: source.len(),
                end: source.len()
            }
        );
    }
}

#[test]
fn overlong_line_is_rejected() {
    let long = format!("FROM a\nRUN {}\n", "x".repeat(70_000));
    let err = parse(&long).unwrap_err();
    assert_eq!(
        err.message,
        "dockerfile line greater than max allowed size of 65535"
    );
    assert_eq!(err.line_col(&long), (2, 1));
    let fits = format!("FROM a\nRUN {}\n", "x".repeat(65_531));
    assert!(parse(&fits).is_ok());
}

#[test]
fn onbuild_chains_are_bounded() {
    let source = format!("{}RUN x\n", "ONBUILD ".repeat(50));
    let err = parse(&source).unwrap_err();
    assert_eq!(err.message, "ONBUILD nested too deeply");
    let ok = parse("ONBUILD ONBUILD RUN x\n").unwrap();
    assert_eq!(dump::dump(&ok), "(onbuild (onbuild (run \"x\")))\n");
}
