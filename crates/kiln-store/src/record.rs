//! Image rows as typed records, and the queries that load them.

use std::collections::BTreeMap;
use std::str::FromStr;

use kiln_content::Digest;
use kiln_image::Reference;
use rusqlite::{Connection, OptionalExtension, Row};

use crate::error::{Result, StoreError};

/// Which build and stage produced an intermediate image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageRef {
    /// Build identifier chosen by the builder.
    pub build_id: String,
    /// Stage name or index in the Dockerfile.
    pub stage: String,
}

/// A layer of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRecord {
    /// Blob digest.
    pub digest: Digest,
    /// Uncompressed diff ID.
    pub diff_id: Digest,
    /// Blob size in bytes (what the layer takes on disk in the store).
    pub size: u64,
    /// Blob media type.
    pub media_type: String,
}

/// An image as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    /// Image ID: the config digest.
    pub id: Digest,
    /// Manifest digest.
    pub manifest_digest: Digest,
    /// Manifest media type (OCI or Docker).
    pub media_type: String,
    /// Config `created`, RFC 3339.
    pub created: Option<String>,
    /// When the image was (last) stored, Unix seconds.
    pub stored_at: i64,
    /// Size as `docker images` reports it: the sum of the layers' content
    /// sizes (see [`kiln_layer::content_size`]).
    pub size: u64,
    /// Config plus layer blob bytes: what the image takes in the store.
    pub stored_size: u64,
    /// Config labels.
    pub labels: BTreeMap<String, String>,
    /// Build stage that produced an intermediate image.
    pub intermediate: Option<StageRef>,
    /// Tags pointing at the image, sorted.
    pub tags: Vec<Reference>,
}

impl ImageRecord {
    /// The 12-hex-character ID `docker images` shows.
    pub fn short_id(&self) -> String {
        self.id.digest().chars().take(12).collect()
    }

    /// True when no tag points at the image (`<none>:<none>`).
    pub fn is_dangling(&self) -> bool {
        self.tags.is_empty()
    }

    /// `RepoDigests`: each tagged repository pinned to the manifest digest.
    pub fn repo_digests(&self) -> Vec<Reference> {
        let by_repo: BTreeMap<String, &Reference> =
            self.tags.iter().map(|t| (t.repository(), t)).collect();
        by_repo
            .values()
            .map(|t| t.with_digest(self.manifest_digest.clone()))
            .collect()
    }

    /// Seconds since the epoch used for `until=`: config `created`, else
    /// the time it was stored.
    pub(crate) fn timestamp(&self) -> i64 {
        self.created
            .as_deref()
            .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
            .map_or(self.stored_at, |t| t.timestamp())
    }
}

/// What `rmi` did, in Docker's terms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoveReport {
    /// References removed ("Untagged: ...").
    pub untagged: Vec<Reference>,
    /// Image deleted ("Deleted: ..."), if it lost its last tag.
    pub deleted: Option<Digest>,
}

const IMAGE_COLUMNS: &str = "id, manifest_digest, media_type, created, stored_at, size, labels, intermediate, build_id, stage,
    (SELECT COALESCE(SUM(l.content_size), 0) FROM image_layers il
     JOIN layers l ON l.digest = il.layer_digest WHERE il.image_id = images.id)";

pub(crate) fn load_image(conn: &Connection, id: &str) -> Result<Option<ImageRecord>> {
    let sql = format!("SELECT {IMAGE_COLUMNS} FROM images WHERE id = ?1");
    let Some(raw) = conn.query_row(&sql, [id], row_to_raw).optional()? else {
        return Ok(None);
    };
    let mut img = raw.into_record()?;
    img.tags = tags_of(conn, id)?;
    Ok(Some(img))
}

pub(crate) fn all_images(conn: &Connection) -> Result<Vec<ImageRecord>> {
    let mut stmt = conn.prepare(&format!("SELECT {IMAGE_COLUMNS} FROM images"))?;
    let mut images = stmt
        .query_map([], row_to_raw)?
        .map(|r| r.map_err(StoreError::from).and_then(RawImage::into_record))
        .collect::<Result<Vec<_>>>()?;
    for img in &mut images {
        img.tags = tags_of(conn, img.id.as_ref())?;
    }
    Ok(images)
}

fn tags_of(conn: &Connection, id: &str) -> Result<Vec<Reference>> {
    let mut stmt =
        conn.prepare("SELECT reference FROM tags WHERE image_id = ?1 ORDER BY reference")?;
    let refs: Vec<String> = stmt
        .query_map([id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    refs.iter()
        .map(|s| Reference::parse(s).map_err(|e| StoreError::Corrupt(format!("tag {s:?}: {e}"))))
        .collect()
}

/// Column values of an `images` row, before interpretation.
struct RawImage {
    id: String,
    manifest: String,
    media_type: String,
    created: Option<String>,
    stored_at: i64,
    size: i64,
    content_size: i64,
    labels: String,
    intermediate: Option<StageRef>,
}

fn row_to_raw(r: &Row<'_>) -> rusqlite::Result<RawImage> {
    let build_id: Option<String> = r.get(8)?;
    let stage: Option<String> = r.get(9)?;
    Ok(RawImage {
        id: r.get(0)?,
        manifest: r.get(1)?,
        media_type: r.get(2)?,
        created: r.get(3)?,
        stored_at: r.get(4)?,
        size: r.get(5)?,
        content_size: r.get(10)?,
        labels: r.get(6)?,
        intermediate: r.get::<_, bool>(7)?.then(|| StageRef {
            build_id: build_id.unwrap_or_default(),
            stage: stage.unwrap_or_default(),
        }),
    })
}

impl RawImage {
    /// Fails on values kiln cannot have written (a damaged database).
    fn into_record(self) -> Result<ImageRecord> {
        let labels = serde_json::from_str(&self.labels)
            .map_err(|e| StoreError::Corrupt(format!("labels of {}: {e}", self.id)))?;
        Ok(ImageRecord {
            id: parse_digest(&self.id)?,
            manifest_digest: parse_digest(&self.manifest)?,
            media_type: self.media_type,
            created: self.created,
            stored_at: self.stored_at,
            size: u64::try_from(self.content_size).unwrap_or(0),
            stored_size: u64::try_from(self.size).unwrap_or(0),
            labels,
            intermediate: self.intermediate,
            tags: Vec::new(),
        })
    }
}

pub(crate) fn parse_digest(s: &str) -> Result<Digest> {
    Digest::from_str(s).map_err(|e| StoreError::Corrupt(format!("digest {s:?}: {e}")))
}

pub(crate) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
