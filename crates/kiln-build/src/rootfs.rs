//! `--output type=local|tar`: an image's root filesystem, flattened, as a directory or a tar
//! (what buildx's local and tar exporters write).
//!
//! The layers are first applied in order to a private directory under the store's temp dir
//! (whiteouts delete what they hide), then written out as one plain tar. A directory output
//! unpacks that tar into the destination, so paths the image deletes are never touched there
//! and, as with every unpack in kiln, each path is resolved inside the destination: symlinks
//! in the image are written as symlinks, never followed out of it.

use std::io::{BufReader, BufWriter, Seek, Write};
use std::path::Path;

use kiln_layer::{Compression, LayerOptions, UnpackOptions, WhiteoutMode};
use kiln_store::{ImageRecord, Store};
use tempfile::TempDir;

use crate::error::{Result, io_err};

/// Writes the filesystem of `image` into `dest` (created if missing; what is there already
/// stays unless the image has the same path).
pub fn export_rootfs_dir(store: &Store, image: &ImageRecord, dest: &Path) -> Result<()> {
    std::fs::create_dir_all(dest).map_err(io_err("creating", dest))?;
    let tmp = store.tmp_dir()?;
    let tar_path = tmp.path().join("rootfs.tar");
    let mut tar = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&tar_path)
        .map_err(io_err("creating", &tar_path))?;
    export_rootfs_tar(store, image, BufWriter::new(&mut tar))?;
    tar.rewind().map_err(io_err("reading", &tar_path))?;
    let opts = UnpackOptions {
        whiteouts: WhiteoutMode::Apply,
    };
    kiln_layer::unpack_layer(BufReader::new(tar), dest, &opts)?;
    Ok(())
}

/// Writes the filesystem of `image` to `out` as one uncompressed tar.
pub fn export_rootfs_tar(store: &Store, image: &ImageRecord, mut out: impl Write) -> Result<()> {
    let flat = flatten(store, image)?;
    let root = flat.path().join("rootfs");
    let opts = LayerOptions {
        compression: Compression::None,
        ..LayerOptions::default()
    };
    kiln_layer::write_layer(&root, &mut out, &opts)?;
    out.flush().map_err(io_err("writing the rootfs tar", &root))
}

/// The image's layers applied in order to a fresh directory (`rootfs` in the returned dir).
fn flatten(store: &Store, image: &ImageRecord) -> Result<TempDir> {
    let tmp = store.tmp_dir()?;
    let root = tmp.path().join("rootfs");
    std::fs::create_dir(&root).map_err(io_err("creating", &root))?;
    let opts = UnpackOptions {
        whiteouts: WhiteoutMode::Apply,
    };
    for layer in store.image_layers(&image.id)? {
        let blob = store.content().open_blob(&layer.digest)?;
        kiln_layer::unpack_layer(BufReader::new(blob), &root, &opts)?;
    }
    Ok(tmp)
}
