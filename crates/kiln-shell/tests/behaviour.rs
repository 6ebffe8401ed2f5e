//! Lexer options, error wording and offsets, variable tracking, word splitting
//! and the `Env` implementations.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use kiln_shell::{Env, ExpandError, Lexer};

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|&(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn value(lexer: &Lexer, word: &str, pairs: &[(&str, &str)]) -> String {
    match lexer.process_word(word, &env(pairs)) {
        Ok(expansion) => expansion.value,
        Err(e) => panic!("{word:?}: unexpected error {e}"),
    }
}

fn failure(word: &str, pairs: &[(&str, &str)]) -> ExpandError {
    match Lexer::new('\\').process_word(word, &env(pairs)) {
        Ok(expansion) => panic!("{word:?}: expected an error, got {:?}", expansion.value),
        Err(e) => e,
    }
}

/// A failing word, its variables, the message and the offset it must report.
type ErrorCase = (
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
    usize,
);

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|&n| n.to_owned()).collect()
}

#[test]
fn error_messages_and_offsets_match_buildkit() {
    let cases: &[ErrorCase] = &[
        ("ab${V?}", &[], "V: is not allowed to be unset", 2),
        ("${V:?}", &[("V", "")], "V: is not allowed to be empty", 0),
        ("${V?custom $W}", &[("W", "text")], "V: custom text", 0),
        ("${V:?why}", &[("V", "")], "V: why", 0),
        ("x${}", &[], "syntax error: bad substitution", 1),
        ("${:-a}", &[], "syntax error: bad substitution", 0),
        ("${", &[], "syntax error: missing '}'", 0),
        ("${V:-a", &[], "syntax error: missing '}'", 0),
        ("${V:-'a}", &[], "syntax error: missing '}'", 0),
        (
            "${V:=a}",
            &[],
            "unsupported modifier (:=) in substitution",
            0,
        ),
        ("${V=a}", &[], "unsupported modifier (=) in substitution", 0),
        (
            "${V",
            &[],
            "unsupported modifier (\u{FFFD}) in substitution",
            0,
        ),
        (
            "a'bc",
            &[],
            "unexpected end of statement while looking for matching single-quote",
            1,
        ),
        (
            "ab\"c",
            &[],
            "unexpected end of statement while looking for matching double-quote",
            2,
        ),
        ("${A:-${B?}}", &[], "B: is not allowed to be unset", 5),
        // An inner failure at the end of input is reported as the outer missing `}`.
        ("${A:-${B?}", &[], "syntax error: missing '}'", 0),
    ];
    let mut failures = Vec::new();
    for &(word, pairs, message, offset) in cases {
        let e = failure(word, pairs);
        if e.message != message || e.offset != offset || e.to_string() != message {
            failures.push(format!(
                "{word:?}: expected {message:?} at {offset}, got {e:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn matched_and_unmatched_names_are_reported() {
    let lexer = Lexer::new('\\');
    let vars = env(&[("FOO", "xxx"), ("BAR", "")]);
    let got = lexer
        .process_word("${FOO-aaa} ${BAR-bbb} ${BAZ-ccc} $1 '$Q'", &vars)
        .unwrap();
    assert_eq!(got.value, "xxx  ccc  $Q");
    assert_eq!(got.matched, set(&["BAR", "FOO"]));
    assert_eq!(got.unmatched, set(&["1", "BAZ"]));

    let got = lexer
        .process_word("${FOO:+${NOPE}}${X#$BAR}", &vars)
        .unwrap();
    assert_eq!(got.matched, set(&["BAR", "FOO"]));
    assert_eq!(got.unmatched, set(&["NOPE", "X"]));
}

#[test]
fn raw_quotes_keep_quote_characters() {
    let lexer = Lexer::new('\\').raw_quotes(true);
    assert_eq!(
        value(&lexer, r#"'a $V'"b $V""#, &[("V", "v")]),
        r#"'a $V'"b v""#
    );
    assert_eq!(value(&lexer, "x''y", &[]), "x''y");
}

#[test]
fn raw_escapes_keep_escape_characters() {
    let lexer = Lexer::new('\\').raw_escapes(true);
    assert_eq!(value(&lexer, r"a\ b\$V", &[("V", "v")]), r"a\ b\$V");
    // Inside double quotes an escape before a plain character is written twice.
    assert_eq!(value(&lexer, r#""a\tb\"""#, &[]), r#"a\\tb\""#);
    // `-`, `+` and `?` operands always drop their escapes.
    assert_eq!(value(&lexer, r"${V:-a\ b}", &[]), "a b");
    assert_eq!(value(&Lexer::new('\\'), r#""a\tb\"""#, &[]), r#"a\tb""#);
}

#[test]
fn skip_unset_env_leaves_unset_references_as_written() {
    let lexer = Lexer::new('\\').skip_unset_env(true);
    let pairs = [("SET", "s"), ("EMPTY", "")];
    assert_eq!(
        value(&lexer, "$UNSET-${UNSET}-$SET-${EMPTY}", &pairs),
        "$UNSET-${UNSET}-s-"
    );
    assert_eq!(
        value(&lexer, "${UNSET:-d}|${SET:-d}|${EMPTY:-d}", &pairs),
        "${UNSET:-d}|s|d"
    );
    // Even forms that would otherwise fail come back unchanged when unset.
    assert_eq!(
        value(&lexer, "${UNSET:=x}${UNSET?}", &pairs),
        "${UNSET:=x}${UNSET?}"
    );
    assert!(lexer.process_word("${SET:=x}", &env(&pairs)).is_err());
}

#[test]
fn backtick_escape() {
    let lexer = Lexer::new('`');
    let pairs = [("PWD", "/home")];
    assert_eq!(value(&lexer, r"he\$PWD", &pairs), r"he\/home");
    assert_eq!(value(&lexer, "he`$PWD", &pairs), "he$PWD");
    assert_eq!(value(&lexer, "\"a``b`\"c`d\"", &pairs), "a`b\"c`d");
    assert_eq!(value(&lexer, r"C:\dir`", &pairs), r"C:\dir");
}

#[test]
fn special_and_positional_parameters() {
    let lexer = Lexer::new('\\');
    assert_eq!(
        value(&lexer, "$0$1$#$@x", &[("0", "zero"), ("#", "n")]),
        "zeronx"
    );
    assert_eq!(
        value(&lexer, "$12a", &[("12", "twelve"), ("1", "one")]),
        "twelvea"
    );
    assert_eq!(value(&lexer, "$a_1-b", &[("a_1", "v")]), "v-b");
    assert_eq!(value(&lexer, "$한국어!", &[("한국어", "k")]), "k!");
    assert_eq!(value(&lexer, "$.$ $", &[]), "$.$ $");
}

#[test]
fn leading_byte_order_mark_is_dropped_like_go() {
    assert_eq!(
        value(&Lexer::new('\\'), "\u{FEFF}a\u{FEFF}", &[]),
        "a\u{FEFF}"
    );
}

#[test]
fn words_split_on_unquoted_whitespace_only() {
    let lexer = Lexer::new('\\');
    let vars = env(&[("V", " a  b "), ("E", "")]);
    let cases: &[(&str, &[&str])] = &[
        ("x$V\"$V\"", &["x", "a", "b", " a  b "]),
        ("a\\ b 'c d'", &["a b", "c d"]),
        ("a\t\n b", &["a", "b"]),
        // Empty words are dropped, quoted or not.
        ("a \"\" '' $E b", &["a", "b"]),
        ("\"\"", &[]),
        // BuildKit quirk: reading a `${...}` operand drops the text gathered
        // before it from the word list (the expanded value is unaffected).
        ("a${E:-b}", &["b"]),
        ("\"a\"${E:+x}c", &["c"]),
        ("a ${E:-b}", &["a", "b"]),
        ("a${E}b", &["ab"]),
    ];
    let mut failures = Vec::new();
    for &(word, expected) in cases {
        let got = lexer.process_words(word, &vars).unwrap();
        if got != expected {
            failures.push(format!("{word:?}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(lexer.process_word("a${E:-b}", &vars).unwrap().value, "ab");
    assert!(lexer.process_words("a\"b", &vars).is_err());
}

#[test]
fn every_env_implementation_is_read() {
    let pairs = env(&[("A", "first"), ("B", "b"), ("A", "last")]);
    let hash: HashMap<String, String> = pairs.iter().cloned().collect();
    let btree: BTreeMap<String, String> = pairs.iter().cloned().collect();
    let lexer = Lexer::new('\\');
    let envs: [&dyn Env; 5] = [&hash, &btree, &pairs, &pairs.as_slice(), &&pairs];
    for env in envs {
        assert_eq!(
            lexer.process_word("$A-$B-${C-c}", env).unwrap().value,
            "last-b-c"
        );
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = "${A:-".repeat(10_000) + &"}".repeat(10_000);
    let e = Lexer::new('\\').process_word(&deep, &env(&[])).unwrap_err();
    assert!(e.message.contains("nested too deeply"), "{e:?}");
    let fine = "${A:-".repeat(50) + "x" + &"}".repeat(50);
    assert_eq!(value(&Lexer::new('\\'), &fine, &[]), "x");
}
