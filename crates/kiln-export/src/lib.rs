//! Image archives: docker-archive and OCI layout import and export.
//!
//! An image here is a manifest, a config and layer blobs in a
//! [`ContentStore`](kiln_content::ContentStore); tags are returned to (or
//! taken from) the caller, which records them in its own metadata.
//!
//! - [`import_archive`] reads `docker save` output (docker 20.10's
//!   `<id>/layer.tar` layout and docker 25+'s OCI-shaped one) and OCI layout
//!   tars, plain or gzip-compressed, as a single stream;
//!   [`import_oci_layout_dir`] reads a layout directory. Uncompressed and
//!   zstd layers are gzip-compressed deterministically on the way in (the
//!   store keeps gzip layers); every blob is checked against the digest it
//!   is named by and every layer against the config's `rootfs.diff_ids`.
//!   Layer blobs are committed as they stream past, configs and manifests
//!   only once all of an image's layers verified, so a failed import leaves
//!   at most unreferenced, intact layer blobs for the store's GC.
//! - [`export_docker_archive`] / [`export_oci_archive`] write archives that
//!   `docker load`, `skopeo` and `umoci` accept, deterministically.

mod error;
mod export;
mod format;
mod hash;
mod import;
mod paths;
mod source;
mod stage;
mod tarout;

pub use error::{Error, Mismatch, Result};
pub use export::{ExportImage, export_docker_archive, export_oci_archive};
pub use import::{ImportedImage, import_archive, import_oci_layout_dir};
