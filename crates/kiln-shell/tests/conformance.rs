//! BuildKit's own expansion tables (`tests/data/envVarTest`, `tests/data/wordsTest`,
//! copied unmodified; formats in `tests/data/README.md`). Every line runs and
//! all mismatches are reported together.

use kiln_shell::Lexer;

const ENV_VAR_TEST: &str = include_str!("data/envVarTest");
const WORDS_TEST: &str = include_str!("data/wordsTest");

fn pair(name: &str, value: &str) -> (String, String) {
    (name.to_owned(), value.to_owned())
}

fn fail_with(mismatches: &[String], ran: usize) {
    assert!(
        mismatches.is_empty(),
        "{} of {ran} lines failed:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

/// Runs one `envVarTest` line; `None` when it passes.
fn check_env_var_line(
    lexer: &Lexer,
    env: &[(String, String)],
    source: &str,
    expected: &str,
) -> Option<String> {
    match (lexer.process_word(source, &env), expected) {
        (Err(_), "error") => None,
        (Ok(got), "error") => Some(format!(
            "{source:?}: expected an error, got {:?}",
            got.value
        )),
        (Err(e), _) => Some(format!("{source:?}: expected {expected:?}, got error {e}")),
        (Ok(got), _) if got.value == expected => None,
        (Ok(got), _) => Some(format!(
            "{source:?}: expected {expected:?}, got {:?}",
            got.value
        )),
    }
}

#[test]
fn env_var_test_table() {
    let env = vec![
        pair("PWD", "/home"),
        pair("SHELL", "bash"),
        pair("KOREAN", "한국어"),
        pair("NULL", ""),
    ];
    let lexer = Lexer::new('\\');
    let (mut ran, mut windows_only) = (0, 0);
    let mut mismatches = Vec::new();
    for (index, raw) in ENV_VAR_TEST.lines().enumerate() {
        let line = raw.trim();
        if raw.starts_with('#') || line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('|').map(str::trim).collect();
        let [platform, source, expected] = fields[..] else {
            panic!("line {}: not three fields: {raw:?}", index + 1);
        };
        match platform {
            // Windows-only: variable names there are case-insensitive.
            "W" => windows_only += 1,
            "A" | "U" => {
                ran += 1;
                if let Some(m) = check_env_var_line(&lexer, &env, source, expected) {
                    mismatches.push(format!("line {}: {m}", index + 1));
                }
            }
            other => panic!("line {}: unknown platform {other:?}", index + 1),
        }
    }
    assert!(
        ran > 200 && windows_only == 2,
        "table shape changed: ran {ran}, skipped {windows_only}"
    );
    fail_with(&mismatches, ran);
}

#[test]
fn words_test_table() {
    let lexer = Lexer::new('\\');
    let mut env: Vec<(String, String)> = Vec::new();
    let mut ran = 0;
    let mut mismatches = Vec::new();
    for (index, line) in WORDS_TEST.lines().enumerate() {
        if line.starts_with('#') {
            continue;
        }
        if let Some(assignment) = line.strip_prefix("ENV ") {
            // Values keep their trailing spaces.
            let (name, value) = assignment
                .trim_start_matches(' ')
                .split_once('=')
                .unwrap_or((assignment, ""));
            env.push(pair(name, value));
            continue;
        }
        let [input, expected] = line.split('|').collect::<Vec<_>>()[..] else {
            panic!("line {}: not exactly one '|': {line:?}", index + 1);
        };
        let input = input.trim();
        let expected: Vec<&str> = expected.trim_start_matches(' ').split(',').collect();
        let got = lexer
            .process_words(input, &env)
            .unwrap_or_else(|_| vec!["error".to_owned()]);
        ran += 1;
        if got != expected {
            mismatches.push(format!(
                "line {}: {input:?}: expected {expected:?}, got {got:?}",
                index + 1
            ));
        }
    }
    assert!(ran >= 20, "table shape changed: ran {ran}");
    fail_with(&mismatches, ran);
}
