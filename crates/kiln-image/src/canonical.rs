//! Canonical JSON: sorted keys at every level, no insignificant whitespace,
//! so equal content always hashes to the same digest.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use oci_spec::image::Digest;

/// Serialises `v` with object keys sorted recursively and compact spacing.
///
/// The workspace enables serde_json's `preserve_order`, and oci-spec keeps
/// labels in a `HashMap`, so insertion order would otherwise leak into
/// digests; going through [`Value`] and sorting removes it.
pub fn canonical_json<T: Serialize>(v: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut value = serde_json::to_value(v)?;
    sort_value(&mut value);
    serde_json::to_vec(&value)
}

fn sort_value(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.sort_keys();
            map.values_mut().for_each(sort_value);
        }
        Value::Array(items) => items.iter_mut().for_each(sort_value),
        _ => {}
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> Digest {
    let hex = hex::encode(Sha256::digest(bytes));
    // 64 lowercase hex characters always form a valid sha256 digest.
    Digest::try_from(format!("sha256:{hex}")).expect("sha256 hex is a valid digest")
}
