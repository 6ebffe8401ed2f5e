//! Arbitrary ignore rules, paths and COPY patterns yield values or typed
//! errors, never panics.

use std::fs;

use kiln_context::{Context, IgnoreMatcher};
use proptest::prelude::*;

/// Characters that exercise every branch of the pattern syntax.
const ALPHABET: &str = "[*?\\[\\]\\\\^!/ab.\\- #\r\n(){}$+|\u{feff}é]{0,24}";

proptest! {
    #[test]
    fn ignore_rules_never_panic(rules in ALPHABET, path in ALPHABET) {
        if let Ok(matcher) = IgnoreMatcher::parse(&rules) {
            let excluded = matcher.is_excluded(&path);
            let may = matcher.may_contain_included(&path);
            // Re-checking is pure: same answer twice.
            prop_assert_eq!(excluded, matcher.is_excluded(&path));
            prop_assert_eq!(may, matcher.may_contain_included(&path));
        }
    }

    #[test]
    fn selection_never_panics(pattern in ALPHABET) {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("a")).unwrap();
        fs::write(tmp.path().join("a/b"), "b").unwrap();
        fs::write(tmp.path().join("a.b"), "ab").unwrap();
        std::os::unix::fs::symlink("../..", tmp.path().join("a/up")).unwrap();
        let ctx = Context::dir(tmp.path(), IgnoreMatcher::empty()).unwrap();
        if let Ok(selected) = ctx.select(&pattern) {
            for sel in &selected {
                prop_assert!(!sel.rel_path.split('/').any(|c| c == ".."));
                prop_assert!(tmp.path().join(&sel.resolved).starts_with(tmp.path()));
                prop_assert!(!sel.resolved.split('/').any(|c| c == ".."));
            }
        }
    }
}
