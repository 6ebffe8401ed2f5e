//! Archive member names: normalised so `./a/b` and `a//b` name the same
//! member, and refused when they could escape the archive root (a name like
//! `../etc/passwd` is an attack on whoever extracts the archive).

use kiln_content::Digest;

use crate::error::{Error, Result};

/// Normalises a member name (or a name in `manifest.json`) to a relative,
/// slash-separated path without `.` or empty components.
pub(crate) fn clean(raw: &str) -> Result<String> {
    if raw.starts_with('/') {
        return Err(traversal(raw));
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(traversal(raw)),
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// Resolves a symlink target relative to the directory holding `link`,
/// allowing `..` only while it stays inside the archive.
pub(crate) fn resolve_symlink(link: &str, target: &str) -> Result<String> {
    if target.starts_with('/') {
        return Err(traversal(target));
    }
    let mut parts: Vec<&str> = link.split('/').collect();
    parts.pop();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop().ok_or_else(|| traversal(target))?;
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// Where an OCI image layout keeps the blob `d`.
pub(crate) fn blob_path(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm(), d.digest())
}

/// The sha256 digest a `blobs/sha256/<hex>` path names, if it is one
/// (the only algorithm the store holds).
pub(crate) fn digest_of_blob_path(path: &str) -> Option<Digest> {
    let hex = path.strip_prefix("blobs/sha256/")?;
    format!("sha256:{hex}").parse().ok()
}

fn traversal(path: &str) -> Error {
    Error::PathTraversal {
        path: path.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_normalises_and_rejects_escapes() {
        assert_eq!(clean("./a//b/./c").unwrap(), "a/b/c");
        assert_eq!(clean("manifest.json").unwrap(), "manifest.json");
        assert!(matches!(clean("../x"), Err(Error::PathTraversal { .. })));
        assert!(matches!(
            clean("a/../../x"),
            Err(Error::PathTraversal { .. })
        ));
        assert!(matches!(
            clean("/etc/passwd"),
            Err(Error::PathTraversal { .. })
        ));
    }

    #[test]
    fn symlinks_resolve_within_root_only() {
        assert_eq!(
            resolve_symlink("b/layer.tar", "../a/layer.tar").unwrap(),
            "a/layer.tar"
        );
        assert_eq!(resolve_symlink("b/x", "y").unwrap(), "b/y");
        assert!(resolve_symlink("b/x", "../../y").is_err());
        assert!(resolve_symlink("b/x", "/y").is_err());
    }

    #[test]
    fn blob_paths_round_trip() {
        let hex = "a".repeat(64);
        let d: Digest = format!("sha256:{hex}").parse().unwrap();
        assert_eq!(blob_path(&d), format!("blobs/sha256/{hex}"));
        assert_eq!(digest_of_blob_path(&blob_path(&d)), Some(d));
        assert_eq!(digest_of_blob_path("abc/layer.tar"), None);
        assert_eq!(digest_of_blob_path("blobs/sha256/xyz"), None);
    }
}
