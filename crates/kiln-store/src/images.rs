//! Images and tags: storing, resolving, tagging, removing, listing.

use std::collections::{BTreeSet, HashMap};

use kiln_content::Digest;
use kiln_image::oci_spec::image::{Descriptor, ImageManifest};
use kiln_image::{BuiltImage, ImageConfig, ImageError, Reference, parse_manifest};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::Store;
use crate::error::{Result, StoreError};
use crate::filter::ImageFilter;
use crate::fsutil::now;
use crate::record::{
    ImageRecord, LayerRecord, RemoveReport, StageRef, all_images, load_image, parse_digest, to_i64,
};
use crate::resolve::{Resolved, resolve_id};

/// Largest manifest read into memory.
const MAX_MANIFEST: u64 = 4 << 20;
/// Largest config read into memory (configs with long histories are big).
const MAX_CONFIG: u64 = 64 << 20;

/// Request to record an image whose blobs are already in the content store.
#[derive(Debug, Clone)]
pub struct PutImage {
    /// Digest of the manifest blob.
    pub manifest: Digest,
    /// References to point at the image (moved from other images if taken).
    pub tags: Vec<Reference>,
    /// `Some` for a build-stage result hidden from `images` without `-a`.
    pub intermediate: Option<StageRef>,
}

/// Parsed manifest and config of an image about to be stored.
struct Loaded {
    manifest: ImageManifest,
    config: ImageConfig,
    manifest_size: u64,
    config_size: u64,
}

impl Store {
    /// Writes a built image's config and manifest blobs (its layers must
    /// already be stored), then records it.
    pub fn put_built(
        &self,
        built: &BuiltImage,
        tags: Vec<Reference>,
        intermediate: Option<StageRef>,
    ) -> Result<ImageRecord> {
        self.content()
            .write_all_bytes(&[&built.config_bytes, &built.manifest_bytes])?;
        self.put_image(&PutImage {
            // Read back and checked against its bytes by `put_image`.
            manifest: built.manifest_descriptor.digest().clone(),
            tags,
            intermediate,
        })
    }

    /// Records an image whose manifest, config and layers are already in
    /// the content store, and points `tags` at it.
    ///
    /// Commits that a power failure may lose harmlessly are not fsynced (see
    /// `Store::light_tx`): storing an image again exactly as it is recorded
    /// (a rebuild that changed nothing only moves its store time and build
    /// ID), and untagged build-stage results, which are build cache. The
    /// blobs are durable either way, and the next durable commit (the
    /// build's final image) syncs these too.
    pub fn put_image(&self, req: &PutImage) -> Result<ImageRecord> {
        let loaded = self.load_blobs(&req.manifest)?;
        let id = loaded.manifest.config().digest().clone();
        let sizes = self.new_content_sizes(&loaded.manifest)?;
        let store = |tx: &Transaction<'_>| {
            self.require_blobs(&loaded.manifest, &req.manifest)?;
            upsert_image(tx, &id, &req.manifest, &loaded, req.intermediate.as_ref())?;
            insert_layers(tx, &id, &loaded, &sizes)?;
            for tag in &req.tags {
                set_tag(tx, tag, &id)?;
            }
            Ok(())
        };
        if req.tags.is_empty() && req.intermediate.is_some() {
            self.light_tx(store)?;
            return self.image(&id);
        }
        let restored = sizes.is_empty()
            && self.light_tx(|tx| {
                if !same_as_stored(tx, &id, req)? {
                    return Ok(false);
                }
                store(tx)?;
                Ok(true)
            })?;
        if !restored {
            self.write_tx(store)?;
        }
        self.image(&id)
    }

    /// Content sizes of the manifest's layers the store has not measured yet,
    /// computed outside any transaction (it streams whole blobs).
    fn new_content_sizes(&self, manifest: &ImageManifest) -> Result<HashMap<Digest, u64>> {
        let mut sizes = HashMap::new();
        for layer in manifest.layers() {
            let digest = layer.digest();
            if sizes.contains_key(digest) || self.known_content_size(digest)?.is_some() {
                continue;
            }
            sizes.insert(digest.clone(), self.measure_layer(digest)?);
        }
        Ok(sizes)
    }

    fn known_content_size(&self, digest: &Digest) -> Result<Option<u64>> {
        let size: Option<Option<i64>> = self
            .conn()
            .query_row(
                "SELECT content_size FROM layers WHERE digest = ?1",
                [digest.as_ref()],
                |r| r.get(0),
            )
            .optional()?;
        Ok(size.flatten().map(|s| u64::try_from(s).unwrap_or(0)))
    }

    /// Streams a layer blob through [`kiln_layer::content_size`]. A blob
    /// that is not a readable layer tar counts 0, as kiln never refused to
    /// record such images.
    fn measure_layer(&self, digest: &Digest) -> Result<u64> {
        let blob = match self.content().open_blob(digest) {
            Err(kiln_content::Error::NotFound { .. }) => {
                return Err(StoreError::MissingBlob(digest.clone()));
            }
            other => other?,
        };
        Ok(kiln_layer::content_size(blob).unwrap_or(0))
    }

    /// Fills the content size of layers recorded before schema version 3.
    /// Blobs that have gone missing are skipped (their layers count 0).
    fn fill_content_sizes(&self) -> Result<()> {
        let missing: Vec<String> = {
            let conn = self.conn();
            let mut stmt = conn.prepare("SELECT digest FROM layers WHERE content_size IS NULL")?;
            stmt.query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?
        };
        if missing.is_empty() {
            return Ok(());
        }
        let mut sizes = Vec::new();
        for digest in &missing {
            match self.measure_layer(&parse_digest(digest)?) {
                Ok(size) => sizes.push((digest, size)),
                Err(StoreError::MissingBlob(_)) => {}
                Err(e) => return Err(e),
            }
        }
        self.write_tx(|tx| {
            for (digest, size) in &sizes {
                tx.execute(
                    "UPDATE layers SET content_size = ?2 WHERE digest = ?1 AND content_size IS NULL",
                    params![digest, to_i64(*size)],
                )?;
            }
            Ok(())
        })
    }

    /// Reads and cross-checks the manifest and config blobs.
    fn load_blobs(&self, manifest_digest: &Digest) -> Result<Loaded> {
        let bytes = self.read_blob(manifest_digest, MAX_MANIFEST)?;
        let manifest = parse_manifest(&bytes)?;
        let config_digest = manifest.config().digest();
        let config_bytes = self.read_blob(config_digest, MAX_CONFIG)?;
        let config = ImageConfig::from_slice(&config_bytes)?;
        let diff_ids = config.oci.rootfs().diff_ids().len();
        if diff_ids != manifest.layers().len() {
            return Err(ImageError::LayerMismatch {
                layers: manifest.layers().len(),
                diff_ids,
            }
            .into());
        }
        Ok(Loaded {
            manifest,
            config,
            manifest_size: bytes.len() as u64,
            config_size: config_bytes.len() as u64,
        })
    }

    fn read_blob(&self, digest: &Digest, max: u64) -> Result<Vec<u8>> {
        match self.content().read_bytes(digest, max) {
            Err(kiln_content::Error::NotFound { .. }) => {
                Err(StoreError::MissingBlob(digest.clone()))
            }
            other => Ok(other?),
        }
    }

    /// Checked inside the write transaction, so GC (which sweeps under the
    /// same lock) cannot remove a blob between the check and the commit.
    fn require_blobs(&self, manifest: &ImageManifest, manifest_digest: &Digest) -> Result<()> {
        let layers = manifest.layers().iter().map(Descriptor::digest);
        let all = [manifest_digest, manifest.config().digest()]
            .into_iter()
            .chain(layers);
        for digest in all {
            if !self.content().contains(digest) {
                return Err(StoreError::MissingBlob(digest.clone()));
            }
        }
        Ok(())
    }

    /// Finds an image by reference, full or short ID (prefix, with or
    /// without `sha256:`), or manifest digest, in Docker's order.
    pub fn resolve(&self, name: &str) -> Result<ImageRecord> {
        let id = resolve_id(&self.conn(), name)?.0;
        self.image(&id)
    }

    /// The image with exactly this ID.
    pub fn image(&self, id: &Digest) -> Result<ImageRecord> {
        self.fill_content_sizes()?;
        load_image(&self.conn(), id.as_ref())?.ok_or_else(|| StoreError::NotFound(id.to_string()))
    }

    /// Layers of an image, bottom first.
    pub fn image_layers(&self, id: &Digest) -> Result<Vec<LayerRecord>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT l.digest, l.diff_id, l.size, l.media_type FROM image_layers il
             JOIN layers l ON l.digest = il.layer_digest WHERE il.image_id = ?1 ORDER BY il.position",
        )?;
        let rows = stmt.query_map([id.as_ref()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (digest, diff_id, size, media_type) = row?;
            out.push(LayerRecord {
                digest: parse_digest(&digest)?,
                diff_id: parse_digest(&diff_id)?,
                size: u64::try_from(size).unwrap_or(0),
                media_type,
            });
        }
        Ok(out)
    }

    /// Content size of each layer of an image, bottom first, in the order of
    /// [`Store::image_layers`]: the size `docker history` shows for the
    /// layer (see [`kiln_layer::content_size`]); they sum to
    /// [`ImageRecord::size`].
    pub fn layer_content_sizes(&self, id: &Digest) -> Result<Vec<u64>> {
        self.fill_content_sizes()?;
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT COALESCE(l.content_size, 0) FROM image_layers il
             JOIN layers l ON l.digest = il.layer_digest WHERE il.image_id = ?1 ORDER BY il.position",
        )?;
        let sizes = stmt
            .query_map([id.as_ref()], |r| r.get::<_, i64>(0))?
            .map(|s| Ok(u64::try_from(s?).unwrap_or(0)))
            .collect::<Result<Vec<_>>>()?;
        Ok(sizes)
    }

    /// Points `target` at the image `source` names (`docker tag`).
    pub fn tag(&self, source: &str, target: &str) -> Result<ImageRecord> {
        let target = Reference::parse(target)?;
        if target.digest().is_some() {
            return Err(StoreError::TagWithDigest(target.to_string()));
        }
        let id = self.resolve(source)?.id;
        self.write_tx(|tx| {
            if load_image(tx, id.as_ref())?.is_none() {
                return Err(StoreError::NotFound(source.to_string()));
            }
            set_tag(tx, &target, &id)
        })?;
        self.image(&id)
    }

    /// Removes one tag; the image stays, possibly dangling.
    pub fn untag(&self, reference: &str) -> Result<()> {
        let r = Reference::parse(reference)?;
        let removed = self.write_tx(|tx| {
            Ok(tx.execute("DELETE FROM tags WHERE reference = ?1", [r.to_string()])?)
        })?;
        if removed == 0 {
            return Err(StoreError::NoSuchTag(r.familiar_string()));
        }
        Ok(())
    }

    /// `docker rmi`: by tag, untags and deletes the image only when that was
    /// its last tag; by ID, removes all its tags and the image, refusing
    /// without `force` when it is tagged in several repositories. Blobs are
    /// freed by the next [`Store::gc`].
    pub fn remove_image(&self, name: &str, force: bool) -> Result<RemoveReport> {
        self.write_tx(|tx| {
            let (id, how) = resolve_id(tx, name)?;
            let record = load_image(tx, id.as_ref())?
                .ok_or_else(|| StoreError::NotFound(name.to_string()))?;
            let untag: Vec<Reference> = match how {
                Resolved::Tag(r) => vec![r],
                Resolved::Id => tags_to_drop(&record, force)?,
            };
            remove_tags_and_maybe_image(tx, &record, untag)
        })
    }

    /// Images matching `filter`, newest first.
    pub fn list_images(&self, filter: &ImageFilter) -> Result<Vec<ImageRecord>> {
        self.fill_content_sizes()?;
        let mut images = all_images(&self.conn())?;
        images.retain_mut(|img| filter.keep(img));
        images.sort_by(|a, b| {
            b.timestamp()
                .cmp(&a.timestamp())
                .then_with(|| a.id.as_ref().cmp(b.id.as_ref()))
        });
        Ok(images)
    }
}

/// By ID, Docker removes every tag when they all share one repository.
fn tags_to_drop(record: &ImageRecord, force: bool) -> Result<Vec<Reference>> {
    let repos: BTreeSet<String> = record.tags.iter().map(Reference::repository).collect();
    if repos.len() > 1 && !force {
        return Err(StoreError::MultipleRepositories {
            short_id: record.short_id(),
        });
    }
    Ok(record.tags.clone())
}

fn remove_tags_and_maybe_image(
    tx: &Transaction<'_>,
    record: &ImageRecord,
    untag: Vec<Reference>,
) -> Result<RemoveReport> {
    for r in &untag {
        tx.execute("DELETE FROM tags WHERE reference = ?1", [r.to_string()])?;
    }
    let left: i64 = tx.query_row(
        "SELECT count(*) FROM tags WHERE image_id = ?1",
        [record.id.as_ref()],
        |r| r.get(0),
    )?;
    let deleted = if left == 0 {
        delete_image_rows(tx, &record.id)?;
        Some(record.id.clone())
    } else {
        None
    };
    Ok(RemoveReport {
        untagged: untag,
        deleted,
    })
}

/// Deletes an image, its tags and layer links, and layer rows no image uses.
pub(crate) fn delete_image_rows(tx: &Connection, id: &Digest) -> Result<()> {
    tx.execute("DELETE FROM images WHERE id = ?1", [id.as_ref()])?;
    tx.execute(
        "DELETE FROM layers WHERE digest NOT IN (SELECT layer_digest FROM image_layers)",
        [],
    )?;
    Ok(())
}

/// Whether storing `req` as image `id` would change nothing but its store
/// time and build ID: same manifest, same stage (or already a final image),
/// every tag already pointing at it.
fn same_as_stored(tx: &Transaction<'_>, id: &Digest, req: &PutImage) -> Result<bool> {
    let Some(stored) = load_image(tx, id.as_ref())? else {
        return Ok(false);
    };
    let same_kind = match (&stored.intermediate, &req.intermediate) {
        (None, _) => true,
        (Some(old), Some(new)) => old.stage == new.stage,
        (Some(_), None) => false,
    };
    Ok(stored.manifest_digest == req.manifest
        && same_kind
        && req.tags.iter().all(|t| stored.tags.contains(t)))
}

fn upsert_image(
    tx: &Transaction<'_>,
    id: &Digest,
    manifest_digest: &Digest,
    loaded: &Loaded,
    stage: Option<&StageRef>,
) -> Result<()> {
    let layer_bytes: u64 = loaded.manifest.layers().iter().map(Descriptor::size).sum();
    let labels = serde_json::to_string(&loaded.config.labels())
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let media_type = loaded.manifest.media_type().as_ref().map_or_else(
        || kiln_image::oci_spec::image::MediaType::ImageManifest.to_string(),
        ToString::to_string,
    );
    // A result that is also a final image stays final.
    tx.execute(
        "INSERT INTO images (id, manifest_digest, media_type, config_size, manifest_size, created,
                             stored_at, size, labels, intermediate, build_id, stage)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT(id) DO UPDATE SET
             manifest_digest = excluded.manifest_digest, media_type = excluded.media_type,
             config_size = excluded.config_size, manifest_size = excluded.manifest_size,
             created = excluded.created, stored_at = excluded.stored_at, size = excluded.size,
             labels = excluded.labels,
             build_id = CASE WHEN images.intermediate AND excluded.intermediate THEN excluded.build_id END,
             stage = CASE WHEN images.intermediate AND excluded.intermediate THEN excluded.stage END,
             intermediate = images.intermediate AND excluded.intermediate",
        params![
            id.as_ref(),
            manifest_digest.as_ref(),
            media_type,
            to_i64(loaded.config_size),
            to_i64(loaded.manifest_size),
            loaded.config.oci.created().clone(),
            now(),
            to_i64(loaded.config_size + layer_bytes),
            labels,
            stage.is_some(),
            stage.map(|s| s.build_id.clone()),
            stage.map(|s| s.stage.clone()),
        ],
    )?;
    Ok(())
}

fn insert_layers(
    tx: &Transaction<'_>,
    id: &Digest,
    loaded: &Loaded,
    content_sizes: &HashMap<Digest, u64>,
) -> Result<()> {
    tx.execute(
        "DELETE FROM image_layers WHERE image_id = ?1",
        [id.as_ref()],
    )?;
    let diff_ids = loaded.config.oci.rootfs().diff_ids();
    for (pos, (layer, diff_id)) in loaded.manifest.layers().iter().zip(diff_ids).enumerate() {
        let content_size = content_sizes.get(layer.digest()).copied().map(to_i64);
        tx.execute(
            "INSERT INTO layers (digest, diff_id, size, media_type, content_size)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(digest) DO UPDATE SET
                 content_size = COALESCE(layers.content_size, excluded.content_size)",
            params![
                layer.digest().as_ref(),
                diff_id,
                to_i64(layer.size()),
                layer.media_type().to_string(),
                content_size
            ],
        )?;
        tx.execute(
            "INSERT INTO image_layers (image_id, position, layer_digest) VALUES (?1, ?2, ?3)",
            params![id.as_ref(), pos as i64, layer.digest().as_ref()],
        )?;
    }
    Ok(())
}

fn set_tag(tx: &Connection, tag: &Reference, id: &Digest) -> Result<()> {
    tx.execute(
        "INSERT INTO tags (reference, image_id) VALUES (?1, ?2)
         ON CONFLICT(reference) DO UPDATE SET image_id = excluded.image_id",
        params![tag.to_string(), id.as_ref()],
    )?;
    Ok(())
}
