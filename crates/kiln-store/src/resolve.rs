//! Docker's image lookup: full digest, reference, then short ID prefix.

use std::str::FromStr;

use kiln_content::Digest;
use kiln_image::Reference;
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{Result, StoreError};
use crate::record::parse_digest;

/// How an argument named an image.
pub(crate) enum Resolved {
    /// By tag (the normalised reference).
    Tag(Reference),
    /// By ID, ID prefix or digest.
    Id,
}

/// Docker's lookup order: full digest, reference, then ID prefix.
pub(crate) fn resolve_id(conn: &Connection, name: &str) -> Result<(Digest, Resolved)> {
    let not_found = || StoreError::NotFound(name.to_string());
    // oci-spec accepts any algorithm, so `busybox:latest` would parse.
    if let Some(d) = name
        .strip_prefix("sha256:")
        .and_then(|_| Digest::from_str(name).ok())
    {
        return by_digest(conn, &d)?
            .map(|id| (id, Resolved::Id))
            .ok_or_else(not_found);
    }
    if let Ok(r) = Reference::parse(name) {
        if let Some(d) = r.digest() {
            return by_digest(conn, d)?
                .map(|id| (id, Resolved::Id))
                .ok_or_else(not_found);
        }
        if let Some(id) = by_tag(conn, &r)? {
            return Ok((id, Resolved::Tag(r)));
        }
    }
    by_prefix(conn, name)?
        .map(|id| (id, Resolved::Id))
        .ok_or_else(not_found)
}

fn by_digest(conn: &Connection, d: &Digest) -> Result<Option<Digest>> {
    let id: Option<String> = conn
        .query_row(
            "SELECT id FROM images WHERE id = ?1 OR manifest_digest = ?1 ORDER BY id = ?1 DESC LIMIT 1",
            [d.as_ref()],
            |r| r.get(0),
        )
        .optional()?;
    id.as_deref().map(parse_digest).transpose()
}

fn by_tag(conn: &Connection, r: &Reference) -> Result<Option<Digest>> {
    let id: Option<String> = conn
        .query_row(
            "SELECT image_id FROM tags WHERE reference = ?1",
            [r.to_string()],
            |r| r.get(0),
        )
        .optional()?;
    id.as_deref().map(parse_digest).transpose()
}

/// Short ID lookup; `AmbiguousId` when the prefix matches several images.
fn by_prefix(conn: &Connection, name: &str) -> Result<Option<Digest>> {
    let hex = name.strip_prefix("sha256:").unwrap_or(name);
    let is_hex = !hex.is_empty()
        && hex.len() <= 64
        && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !is_hex {
        return Ok(None);
    }
    let mut stmt = conn.prepare("SELECT id FROM images WHERE substr(id, 8, ?1) = ?2 LIMIT 2")?;
    let ids: Vec<String> = stmt
        .query_map(params![hex.len() as i64, hex], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    match ids.as_slice() {
        [] => Ok(None),
        [one] => parse_digest(one).map(Some),
        _ => Err(StoreError::AmbiguousId(name.to_string())),
    }
}
