//! Heredocs, with expectations taken from BuildKit's parser behaviour (its
//! `parser_heredoc_test`). One difference by design: for `<<-` the body here already has its
//! leading tabs removed (BuildKit chomps later, in the instruction layer).

#[path = "support/dump.rs"]
mod dump;

use kiln_dockerfile::ast::Heredoc;
use kiln_dockerfile::parser::parse;

/// `(name, content, expand, chomp)` of one heredoc.
type Doc = (&'static str, &'static str, bool, bool);
type OwnedDoc = (String, String, bool, bool);

fn heredocs(source: &str) -> Vec<Vec<OwnedDoc>> {
    let ast = parse(source).unwrap_or_else(|e| panic!("{}", e.render("Dockerfile", source)));
    ast.nodes
        .iter()
        .map(|n| n.heredocs.iter().map(tuple).collect())
        .collect()
}

fn tuple(h: &Heredoc) -> OwnedDoc {
    (h.name.clone(), h.content.clone(), h.expand, h.chomp)
}

fn owned(docs: &[Doc]) -> Vec<OwnedDoc> {
    docs.iter()
        .map(|&(n, c, e, ch)| (n.to_owned(), c.to_owned(), e, ch))
        .collect()
}

#[test]
fn buildkit_heredoc_table() {
    let source = "\
FROM alpine:3.6
USER <<INVALID
INVALID
RUN <<EMPTY
EMPTY
RUN 3<<EMPTY2
EMPTY2
RUN \"<<NOHEREDOC\"
RUN <<INDENT
\tfoo
\tbar
INDENT
RUN <<-UNINDENT2
\tbaz
\tquux
\tUNINDENT2
RUN <<-'NOEXPAND'
\tdon't expand $NAME
NOEXPAND
RUN <<COMMENT
# internal comment
echo foo bar # trailing comment
COMMENT
RUN --mount=type=cache,target=/foo <<MOUNT
echo hello
MOUNT
COPY <<FILE1 <<FILE2 /dest
content 1
FILE1
content 2
FILE2
COPY <<X <<Y /dest
Y
X
X
Y
RUN <<COMPLEX python3
print('hello world')
COMPLEX
RUN <<eo'f'
echo foo
eof
RUN <<'e'o\\'f
echo foo
eo'f
RUN <<'one two'
echo bar
one two
RUN <<$EOF
$EOF
RUN <<  EOF  > foo
EOF
";
    let expected: Vec<Vec<Doc>> = vec![
        vec![],
        vec![],
        vec![],
        vec![("EMPTY", "", true, false)],
        vec![("EMPTY2", "", true, false)],
        vec![],
        vec![("INDENT", "\tfoo\n\tbar\n", true, false)],
        vec![("UNINDENT2", "baz\nquux\n", true, true)],
        vec![("NOEXPAND", "don't expand $NAME\n", false, true)],
        vec![(
            "COMMENT",
            "# internal comment\necho foo bar # trailing comment\n",
            true,
            false,
        )],
        vec![("MOUNT", "echo hello\n", true, false)],
        vec![
            ("FILE1", "content 1\n", true, false),
            ("FILE2", "content 2\n", true, false),
        ],
        vec![("X", "Y\n", true, false), ("Y", "X\n", true, false)],
        vec![("COMPLEX", "print('hello world')\n", true, false)],
        vec![("eof", "echo foo\n", false, false)],
        vec![("eo'f", "echo foo\n", false, false)],
        vec![("one two", "echo bar\n", false, false)],
        vec![("$EOF", "", true, false)],
        vec![("EOF", "", true, false)],
    ];
    let expected: Vec<_> = expected.iter().map(|d| owned(d)).collect();
    assert_eq!(heredocs(source), expected);
}

#[test]
fn heredoc_lines_are_not_instructions() {
    let source = "FROM a\nRUN <<EOF bash\nFROM b\n# not a comment\n\nEOF\nUSER x\n";
    let ast = parse(source).unwrap();
    assert_eq!(
        dump::dump(&ast),
        "(from \"a\")\n(run \"<<EOF bash\")\n(user \"x\")\n"
    );
    assert_eq!(
        ast.nodes[1].heredocs[0].content,
        "FROM b\n# not a comment\n\n"
    );
    assert_eq!((ast.nodes[1].start_line, ast.nodes[1].end_line), (2, 6));
    assert_eq!((ast.nodes[2].start_line, ast.end_line), (7, 7));
}

#[test]
fn copy_heredoc_keeps_args_and_span_covers_body() {
    let source = "FROM a\nCOPY <<EOF /path\nhello\nEOF\n";
    let ast = parse(source).unwrap();
    let copy = &ast.nodes[1];
    assert_eq!(
        dump::dump(&ast).lines().nth(1),
        Some("(copy \"<<EOF\" \"/path\")")
    );
    let doc = &copy.heredocs[0];
    assert_eq!(&source[doc.span.start..doc.span.end], "hello\nEOF");
    assert_eq!(
        &source[copy.span.start..copy.span.end],
        "COPY <<EOF /path\nhello\nEOF"
    );
}

#[test]
fn crlf_body_is_kept_raw() {
    let ast = parse("FROM a\r\nRUN <<EOF\r\necho hi\r\nEOF\r\n").unwrap();
    assert_eq!(ast.nodes[1].heredocs[0].content, "echo hi\r\n");
}

#[test]
fn json_form_has_no_heredocs() {
    let ast = parse("FROM a\nRUN [\"<<EOF\"]\nRUN [\"<<'EOF'\"]\n").unwrap();
    assert!(ast.nodes.iter().all(|n| n.heredocs.is_empty()));
    assert_eq!(ast.nodes.len(), 3);
}

#[test]
fn onbuild_trigger_heredoc_attaches_to_onbuild() {
    let source = "FROM a\nONBUILD RUN <<EOF\necho hi\nEOF\nONBUILD USER <<EOF\n";
    let ast = parse(source).unwrap();
    assert_eq!(ast.nodes[1].heredocs.len(), 1);
    assert_eq!(ast.nodes[1].heredocs[0].content, "echo hi\n");
    assert!(
        ast.nodes[1]
            .next
            .as_ref()
            .is_some_and(|t| t.heredocs.is_empty())
    );
    assert!(ast.nodes[2].heredocs.is_empty(), "USER takes no heredoc");
}

#[test]
fn heredoc_after_continuation() {
    let source = "FROM a\nRUN --mount=type=cache,target=/x \\\n  <<EOF\nls\nEOF\n";
    let ast = parse(source).unwrap();
    assert_eq!(ast.nodes[1].heredocs[0].content, "ls\n");
    assert_eq!(ast.nodes[1].flags[0].text, "--mount=type=cache,target=/x");
}

#[test]
fn unterminated_heredoc_points_at_its_word() {
    let source = "FROM a\nRUN <<EOF <<END\nx\nEOF\ny\n";
    let err = parse(source).unwrap_err();
    assert_eq!(err.message, "unterminated heredoc");
    assert_eq!(&source[err.span.start..err.span.end], "<<END");
    assert_eq!(err.line_col(source), (2, 11));
}

#[test]
fn unbalanced_quote_means_no_heredoc() {
    let ast = parse("FROM a\nRUN <<EOF \"\nUSER x\n").unwrap();
    assert!(ast.nodes[1].heredocs.is_empty());
    assert_eq!(ast.nodes.len(), 3);
}
