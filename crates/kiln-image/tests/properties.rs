//! Properties over arbitrary input: parsing never panics, normalised forms
//! are fixed points, canonical JSON is order-independent.

use kiln_image::{Reference, canonical_json, path_match};
use proptest::prelude::*;

proptest! {
    #[test]
    fn reference_parse_is_total_and_idempotent(s in "\\\\PC{0,80}") {
        if let Ok(r) = Reference::parse(&s) {
            let again = Reference::parse(&r.to_string());
            prop_assert_eq!(again, Ok(r.clone()));
            prop_assert!(Reference::parse(&r.familiar_string()).is_ok());
        }
    }

    #[test]
    fn reference_like_strings_parse_or_fail_cleanly(
        s in "[a-zA-Z0-9._:/@-]{0,60}",
    ) {
        let _ = Reference::parse(&s);
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
