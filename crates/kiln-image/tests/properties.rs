//! Properties over arbitrary input: parsing never panics, normalised forms
//! are fixed points, canonical JSON is order-independent.

use kiln_image::{Reference, canonical_json, path_match};
use proptest::prelude::*;

/// Any accepted reference re-parses from its full and familiar forms to
/// itself.
fn assert_round_trip(s: &str) -> Result<(), TestCaseError> {
    if let Ok(r) = Reference::parse(s) {
        prop_assert_eq!(Reference::parse(&r.to_string()), Ok(r.clone()));
        prop_assert_eq!(Reference::parse(&r.familiar_string()), Ok(r.clone()));
    }
    Ok(())
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,80}") {
        assert_round_trip(&s)?;
    }

    #[test]
    fn reference_like_strings_round_trip(s in "([a-z0-9]{1,8}[._:/@-]?){0,8}") {
        assert_round_trip(&s)?;
    }
    #[test]
    fn glob_never_panics(p in "[a-c*?\\\\\\[\\]^/-]{0,12}", n in "[a-c/*]{0,12}") {
        let _ = path_match(&p, &n);
    }

    #[test]
    fn canonical_json_is_order_independent(pairs in proptest::collection::btree_map("[a-z]{1,6}", 0i64..100, 0..10)) {
        let forward: serde_json::Map<String, serde_json::Value> =
            pairs.iter().map(|(k, v)| (k.clone(), serde_json::json!(v))).collect();
        let backward: serde_json::Map<String, serde_json::Value> =
            pairs.iter().rev().map(|(k, v)| (k.clone(), serde_json::json!(v))).collect();
        prop_assert_eq!(canonical_json(&forward).unwrap(), canonical_json(&backward).unwrap());
    }
}
