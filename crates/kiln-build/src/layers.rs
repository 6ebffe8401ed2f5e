//! Layers on disk: base images unpacked once per diff ID into the store's unpacked-layer cache
//! (overlay form, ready to stack as lowers), and step upper dirs turned into layer blobs.

use std::path::PathBuf;
use std::sync::Mutex;

use kiln_image::oci_spec::image::{Descriptor, MediaType};
use kiln_image::{ImageBuilder, ImageConfig, LayerInfo};
use kiln_layer::{LayerOptions, UnpackOptions, WhiteoutMode};
use kiln_store::{LayerRecord, Store, StoreError};

use crate::error::{BuildError, Result};

/// Largest config blob read into memory.
const MAX_CONFIG: u64 = 64 << 20;

/// An image from the store, ready to build on.
pub(crate) struct BaseImage {
    pub config: ImageConfig,
    pub layers: Vec<LayerRecord>,
}

impl BaseImage {
    /// Looks `name` up in the store; a missing image is [`BuildError::ImageNotFound`].
    pub fn load(store: &Store, name: &str) -> Result<Self> {
        let record = match store.resolve(name) {
            Ok(r) => r,
            Err(StoreError::NotFound(_)) => return Err(BuildError::ImageNotFound(name.into())),
            Err(e) => return Err(e.into()),
        };
        let bytes = store.content().read_bytes(&record.id, MAX_CONFIG)?;
        let config = ImageConfig::from_slice(&bytes)?;
        let layers = store.image_layers(&record.id)?;
        Ok(Self { config, layers })
    }

    /// An image builder continuing from this image.
    pub fn builder(&self) -> Result<ImageBuilder> {
        let descriptors = self
            .layers
            .iter()
            .map(|l| {
                Descriptor::new(
                    MediaType::from(l.media_type.as_str()),
                    l.size,
                    l.digest.clone(),
                )
            })
            .collect();
        Ok(ImageBuilder::new(self.config.clone(), descriptors)?)
    }
}

/// Unpacks layers into the store's cache, serialising unpacks so parallel stages on the same
/// base unpack each layer once.
pub(crate) struct LayerCache<'a> {
    store: &'a Store,
    unpack_lock: Mutex<()>,
}

impl<'a> LayerCache<'a> {
    pub fn new(store: &'a Store) -> Self {
        Self {
            store,
            unpack_lock: Mutex::new(()),
        }
    }

    /// The unpacked directories of `layers`, bottom first, unpacking those not cached yet.
    pub fn lowers(&self, layers: &[LayerRecord]) -> Result<Vec<PathBuf>> {
        layers.iter().map(|l| self.lower(l)).collect()
    }

    fn lower(&self, layer: &LayerRecord) -> Result<PathBuf> {
        if let Some(u) = self.store.unpacked(&layer.diff_id)? {
            return Ok(u.path);
        }
        let _guard = self.unpack_lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(u) = self.store.unpacked(&layer.diff_id)? {
            return Ok(u.path);
        }
        let tmp = self.store.tmp_dir()?;
        let dest = tmp.path().join("layer");
        std::fs::create_dir(&dest).map_err(crate::error::io_err("creating", &dest))?;
        let blob = self.store.content().open_blob(&layer.digest)?;
        let opts = UnpackOptions {
            whiteouts: WhiteoutMode::Overlay,
        };
        let stats = kiln_layer::unpack_layer(std::io::BufReader::new(blob), &dest, &opts)?;
        if stats.diff_id != layer.diff_id {
            return Err(BuildError::Invalid(format!(
                "layer {} has diff ID {}, expected {}",
                layer.digest, stats.diff_id, layer.diff_id
            )));
        }
        let added = self
            .store
            .add_unpacked(&layer.diff_id, &dest, stats.uncompressed_size)?;
        Ok(added.path)
    }
}

/// Writes `upper` as a layer blob (compressed and clamped as `opts` say) into the content store, then moves it
/// into the unpacked-layer cache so later steps and builds stack it without unpacking.
/// Returns the layer for the manifest and its cached directory.
pub(crate) fn commit_upper(
    store: &Store,
    upper: &std::path::Path,
    opts: &LayerOptions,
) -> Result<(LayerInfo, PathBuf)> {
    let mut writer = store.content().writer()?;
    let desc = kiln_layer::write_layer(upper, &mut writer, opts)?;
    let (digest, size) = writer.commit(Some(&desc.digest))?;
    let cached = store.add_unpacked(&desc.diff_id, upper, desc.uncompressed_size)?;
    let info = LayerInfo {
        digest,
        diff_id: desc.diff_id,
        size,
        media_type: MediaType::from(opts.compression.media_type()),
    };
    Ok((info, cached.path))
}

/// `lowers` (bottom first) with each directory only at its topmost position: overlayfs refuses
/// a layer twice (identical steps, e.g. two empty ones, share one cached directory), and the
/// upper occurrence already decides everything the lower one could.
pub(crate) fn stackable(lowers: &[PathBuf]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::with_capacity(lowers.len());
    for (i, dir) in lowers.iter().enumerate() {
        if !lowers[i + 1..].contains(dir) {
            out.push(dir.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stackable_keeps_topmost_occurrence() {
        let p = |s: &str| PathBuf::from(s);
        let got = stackable(&[p("a"), p("e"), p("b"), p("e"), p("a")]);
        assert_eq!(got, [p("b"), p("e"), p("a")]);
    }
}
