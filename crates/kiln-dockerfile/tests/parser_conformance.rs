//! BuildKit's own parser test files (copied under `tests/data/parser`, see its README):
//! every positive case must dump exactly to its `result`, every negative case must fail.

#[path = "support/dump.rs"]
mod dump;

use std::fs;
use std::path::{Path, PathBuf};

use kiln_dockerfile::parser::parse;

fn data_dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/parser")
        .join(sub)
}

fn case_dirs(sub: &str) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(data_dir(sub))
        .expect("test data directory")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn positive_cases_match_buildkit_dumps() {
    let dirs = case_dirs("testfiles");
    assert_eq!(dirs.len(), 33, "expected all 33 upstream cases");
    let mut mismatches = Vec::new();
    for dir in &dirs {
        let name = dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let source = read(&dir.join("Dockerfile"));
        let expected = read(&dir.join("result"));
        match parse(&source) {
            Ok(ast) => {
                let got = dump::dump(&ast);
                if got != expected {
                    mismatches.push(format!("{name}:\n--- expected\n{expected}--- got\n{got}"));
                }
            }
            Err(err) => mismatches.push(format!("{name}: {}", err.render("Dockerfile", &source))),
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[test]
fn negative_cases_fail() {
    let dirs = case_dirs("testfiles-negative");
    assert_eq!(dirs.len(), 4, "expected all 4 upstream negative cases");
    for dir in &dirs {
        let source = read(&dir.join("Dockerfile"));
        let result = parse(&source);
        assert!(result.is_err(), "{} parsed: {result:?}", dir.display());
    }
}

#[test]
fn negative_case_messages() {
    let expect = [
        ("empty_dockerfile", "file with no instructions"),
        ("only_comments", "file with no instructions"),
        ("env_no_value", "ENV must have two arguments"),
        (
            "shykes-nested-json",
            "when using JSON array syntax, arrays must be comprised of strings only",
        ),
    ];
    for (case, message) in expect {
        let source = read(&data_dir("testfiles-negative").join(case).join("Dockerfile"));
        let err = parse(&source).expect_err(case);
        assert_eq!(err.message, message, "{case}");
    }
}

#[test]
fn line_ranges_follow_buildkit() {
    let source = read(&data_dir("testfile-line").join("Dockerfile"));
    let ast = parse(&source).expect("testfile-line parses");
    assert_eq!((ast.start_line, ast.end_line), (5, 31));
    let ranges: Vec<(usize, usize)> = ast
        .nodes
        .iter()
        .map(|n| (n.start_line, n.end_line))
        .collect();
    assert_eq!(ranges, vec![(5, 5), (11, 12), (17, 31)]);
}
