//! `${V#p}` `${V##p}` `${V%p}` `${V%%p}` `${V/p/r}` `${V//p/r}`.
//!
//! Cases marked "lex_test" are the ones BuildKit pins in its Go tests
//! (`frontend/dockerfile/shell/lex_test.go`); the others follow from its
//! documented translation of a pattern into a Go regex: `*` is `.*` (lazy for
//! `#`/`%`), `?` is `.`, `\` quotes only `*`, `?`, `\` (and `}`/`/` for the
//! `${}` syntax), everything else, brackets included, is literal, and neither
//! `*` nor `?` matches a newline.

use kiln_shell::Lexer;

/// `Ok(value)` or `Err(text the error message must contain)`.
type Expected = Result<&'static str, &'static str>;

/// Variables set for one case.
type Vars = &'static [(&'static str, &'static str)];

/// One case: the word, its variables, what it must give.
type Case = (&'static str, Vars, Expected);

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|&(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn run_table(lexer: &Lexer, cases: &[Case]) {
    let mut failures = Vec::new();
    for &(word, vars, expected) in cases {
        let got = lexer.process_word(word, &env(vars));
        let ok = match (&got, expected) {
            (Ok(got), Ok(want)) => got.value == want,
            (Err(got), Err(want)) => got.message.contains(want),
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "{word:?} with {vars:?}: expected {expected:?}, got {got:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn buildkit_lex_test_cases() {
    let xxyy: Vars = &[("FOO", "xxyy")];
    let cases: &[Case] = &[
        (
            "${FOO#()[]{\\}^$.\\*\\?|\\\\}",
            &[("FOO", "()[]{}^$.*?|\\x")],
            Ok("x"),
        ),
        ("${FOO%%\\**}", &[("FOO", "xx**")], Ok("xx")),
        ("${FOO#*x*y}", xxyy, Ok("y")),
        ("${FOO#*}", xxyy, Ok("xxyy")),
        ("${FOO#$BAR}", &[("FOO", "xxyy"), ("BAR", "x")], Ok("xyy")),
        ("${FOO#$BAR}", &[("FOO", "xxyy"), ("BAR", "")], Ok("xxyy")),
        ("${FOO#}", xxyy, Ok("xxyy")),
        ("${FOO##*x}", xxyy, Ok("yy")),
        ("${FOO##}", xxyy, Ok("xxyy")),
        ("${FOO#?\\?}", &[("FOO", "???y")], Ok("?y")),
        ("${ABC:-.}${FOO%x}${ABC:-.}", xxyy, Ok(".xxyy.")),
        ("${FOO%%\\**\\*}", &[("FOO", "a***yy*")], Ok("a")),
        ("${FOO%}", xxyy, Ok("xxyy")),
        ("${FOO%%$BAR}", &[("FOO", "xxyy"), ("BAR", "")], Ok("xxyy")),
        (
            "${FOO:#}",
            &[],
            Err("unsupported modifier (:#) in substitution"),
        ),
        ("${FOO:##}", &[], Err("unsupported modifier (:#)")),
        ("${FOO:%}", &[], Err("unsupported modifier (:%)")),
        ("${FOO:%%}", &[], Err("unsupported modifier (:%)")),
        (
            "${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}",
            &[("FOO", "/foo*/*/*.txt"), ("NEEDLE", "\\*/")],
            Ok("/foo.*/*.txt - /foo..*.txt"),
        ),
        (
            "${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}",
            &[("FOO", "/tmp/tmp/bar.txt"), ("NEEDLE", "/tmp")],
            Ok("/tmp/bar.txt - /bar.txt"),
        ),
        (
            "${FOO/$NEEDLE/$REPLACEMENT} - ${FOO//$NEEDLE/$REPLACEMENT}",
            &[
                ("FOO", "/a/foo/b/c.txt"),
                ("NEEDLE", "/?/"),
                ("REPLACEMENT", "/"),
            ],
            Ok("/foo/b/c.txt - /foo/c.txt"),
        ),
        (
            "${FOO/$NEEDLE/$REPLACEMENT}",
            &[
                ("FOO", "http://google.de"),
                ("NEEDLE", "http://"),
                ("REPLACEMENT", "https://"),
            ],
            Ok("https://google.de"),
        ),
        (
            "${FOO//\\//\\/}",
            &[("FOO", "/tmp/foo.txt")],
            Ok("\\/tmp\\/foo.txt"),
        ),
        (
            "${FOO/$BAR/ww}",
            &[("FOO", "xxyy"), ("BAR", "")],
            Ok("wwxxyy"),
        ),
        ("${FOO//ww}", xxyy, Err("missing '/' in ${}")),
        ("${FOO//}", xxyy, Err("missing '/' in ${}")),
        ("${FOO///}", xxyy, Ok("xxyy")),
        ("${FOO///}", &[], Ok("")),
    ];
    run_table(&Lexer::new('\\'), cases);
}

#[test]
fn shortest_and_longest_prefix_and_suffix() {
    let path: Vars = &[("V", "/a/b/c")];
    let file: Vars = &[("V", "file.tar.gz")];
    let cases: &[Case] = &[
        ("${V#*/}", path, Ok("a/b/c")),
        ("${V##*/}", path, Ok("c")),
        ("${V%/*}", path, Ok("/a/b")),
        ("${V%%/*}", path, Ok("")),
        ("${V%.*}", file, Ok("file.tar")),
        ("${V%%.*}", file, Ok("file")),
        ("${V#*.}", file, Ok("tar.gz")),
        ("${V##*.}", file, Ok("gz")),
        ("${V#??}", &[("V", "abc")], Ok("c")),
        ("${V%?}", &[("V", "abc")], Ok("ab")),
        ("${V#?}", &[("V", "한국어")], Ok("국어")),
        ("${V%?}", &[("V", "한국어")], Ok("한국")),
        ("${V#x}", &[("V", "abc")], Ok("abc")),
        ("${V%x}", &[("V", "abc")], Ok("abc")),
        // Neither `*` nor `?` crosses a newline.
        ("${V#*b}", &[("V", "a\nb")], Ok("a\nb")),
        ("${V%%*}", &[("V", "a\nb")], Ok("a\n")),
        ("${V#?}", &[("V", "\nb")], Ok("\nb")),
        // Brackets are literal, not character classes.
        ("${V#[ab]}", &[("V", "a[ab]")], Ok("a[ab]")),
        ("${V#[ab]}", &[("V", "[ab]x")], Ok("x")),
        ("${V%[!x]}", &[("V", "a[!x]")], Ok("a")),
        // Regex metacharacters are literal.
        ("${V#a.c}", &[("V", "abc")], Ok("abc")),
        ("${V#a.c}", &[("V", "a.cd")], Ok("d")),
        ("${V%(x|y)}", &[("V", "a(x|y)")], Ok("a")),
    ];
    run_table(&Lexer::new('\\'), cases);
}

#[test]
fn unset_and_empty_variables() {
    let cases: &[Case] = &[
        ("[${V#a}]", &[], Ok("[]")),
        ("[${V%%*}]", &[("V", "")], Ok("[]")),
        ("[${V/a/b}]", &[], Ok("[]")),
        // The empty value still has one (empty) match for a pattern that can be empty.
        ("[${V/*/X}]", &[], Ok("[X]")),
        ("[${V//*/X}]", &[("V", "")], Ok("[X]")),
        ("[${V//*/X}]", &[("V", "ab")], Ok("[X]")),
        ("[${V//$E/-}]", &[("V", "ab"), ("E", "")], Ok("[-a-b-]")),
        // An unset pattern variable is an empty pattern.
        ("${V%${EXT}}", &[("V", "a.tar.gz")], Ok("a.tar.gz")),
        (
            "${V%${EXT}}",
            &[("V", "a.tar.gz"), ("EXT", ".gz")],
            Ok("a.tar"),
        ),
    ];
    run_table(&Lexer::new('\\'), cases);
}

#[test]
fn quotes_and_escapes_in_patterns() {
    let cases: &[Case] = &[
        // Quotes are removed before the pattern is read, so they do not protect `*`.
        ("${V##\"*\"}", &[("V", "*x")], Ok("")),
        ("${V#'a'}", &[("V", "abc")], Ok("bc")),
        // A quoted `#` still makes the operator greedy.
        ("${V#'#'*a}", &[("V", "aab")], Ok("b")),
        ("${V#*a}", &[("V", "aab")], Ok("ab")),
        // A backslash quotes `*`, `?` and `\`; any other escape is an error.
        ("${V#\\*}", &[("V", "*x")], Ok("x")),
        ("${V#\\*}", &[("V", "ax")], Ok("ax")),
        ("${V#\\?}", &[("V", "a?")], Ok("a?")),
        ("${V%\\\\}", &[("V", "a\\")], Ok("a")),
        (
            "${V#\\a}",
            &[("V", "abc")],
            Err("invalid pattern (\\a) in substitution: invalid escape '\\a'"),
        ),
        ("${V#\\$}", &[("V", "$x")], Err("invalid escape '\\$'")),
        // `}` and `/` are escaped only for the `${}` syntax.
        ("${V/\\}/x}", &[("V", "a}b")], Ok("axb")),
        ("${V#\\}}", &[("V", "}b")], Ok("b")),
        ("${V/a\\/b/X}", &[("V", "a/b/c")], Ok("X/c")),
        // The replacement keeps its escapes.
        ("${V/b/\\*}", &[("V", "abc")], Ok("a\\*c")),
        // A pattern taken from a variable is still a pattern.
        ("${V#$P}", &[("V", "/a/b"), ("P", "*/")], Ok("a/b")),
    ];
    run_table(&Lexer::new('\\'), cases);
}

#[test]
fn replacement_rules() {
    let abcabc: Vars = &[("V", "abcabc")];
    let cases: &[Case] = &[
        // `*` is always greedy in replacements.
        ("${V/b*/X}", abcabc, Ok("aX")),
        ("${V/b?/X}", abcabc, Ok("aXabc")),
        ("${V//b?/X}", abcabc, Ok("aXaX")),
        ("${V//?/-}", &[("V", "한국")], Ok("--")),
        ("${V//\\*/x}", &[("V", "a*b*")], Ok("axbx")),
        ("${V//[/x}", &[("V", "a[b")], Ok("axb")),
        // No anchors: `#` and `%` at the start of the pattern are literal.
        ("${V/#a/X}", &[("V", "aa")], Ok("aa")),
        ("${V/#a/X}", &[("V", "x#ab")], Ok("xXb")),
        ("${V/%a/X}", &[("V", "a%a")], Ok("aX")),
        // `//` expands Go's `$0` in the replacement; `/` inserts it as written.
        ("${V//b/$R}", &[("V", "abc"), ("R", "<$0>")], Ok("a<b>c")),
        ("${V/b/$R}", &[("V", "abc"), ("R", "<$0>")], Ok("a<$0>c")),
        ("${V//b/$R}", &[("V", "abc"), ("R", "$1$x$$")], Ok("a$c")),
        ("${V//b/X}}", &[("V", "abc")], Ok("aXc}")),
        (
            "${V/a",
            &[("V", "abc")],
            Err("syntax error: missing '/' in ${}"),
        ),
        ("${V/a/b", &[("V", "abc")], Err("syntax error: missing '}'")),
    ];
    run_table(&Lexer::new('\\'), cases);
}

#[test]
fn backtick_escape_leaves_pattern_backslashes_alone() {
    let cases: &[Case] = &[
        // The pattern escape is always `\`, whatever the Dockerfile escape.
        ("${V#\\*}", &[("V", "*a")], Ok("a")),
        // A backtick-escaped character keeps its backtick in the pattern.
        ("${V#`*}", &[("V", "`ab")], Ok("ab")),
        ("${V/`}/x}", &[("V", "a`}b")], Ok("axb")),
    ];
    run_table(&Lexer::new('`'), cases);
}

#[test]
fn skip_unset_env_writes_pattern_forms_back() {
    let lexer = Lexer::new('\\').skip_unset_env(true);
    let cases: &[Case] = &[
        ("${V#a*}", &[], Ok("${V#a*}")),
        ("${V%%a}", &[], Ok("${V%%a}")),
        // BuildKit writes `//` back as `/`.
        ("${V//a/b}", &[], Ok("${V/a/b}")),
        ("${V#a*}", &[("V", "abc")], Ok("bc")),
    ];
    run_table(&lexer, cases);
}
