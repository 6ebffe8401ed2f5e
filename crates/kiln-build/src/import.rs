//! `kiln import`: a root filesystem tarball becomes a one-layer image, as `docker import` makes it.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read};

use flate2::Compression;
use flate2::bufread::GzDecoder;
use flate2::write::GzEncoder;
use kiln_content::Sha256Writer;
use kiln_dockerfile::instructions::Instruction;
use kiln_dockerfile::stages::{Platform, StageOptions};
use kiln_image::oci_spec::image::{Arch, History, MediaType, Os};
use kiln_image::{ImageBuilder, ImageConfig, LayerInfo, MediaFlavor, Reference};
use kiln_store::{ImageRecord, Store};

use crate::error::{BuildError, Result};
use crate::metadata::{self, Applied, MetaState};

/// gzip's magic bytes.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Imports a (plain or gzip) rootfs tarball as a one-layer image, tagged `reference` if given.
///
/// `changes` are Dockerfile instructions applied to the config (`CMD ["sh"]`,
/// `ENV PATH=...`) exactly as a build applies them; like `docker import`, they add no history.
pub fn import_rootfs(
    store: &Store,
    reader: impl Read,
    reference: Option<&str>,
    changes: &[String],
) -> Result<ImageRecord> {
    let tags = reference
        .map(Reference::parse)
        .transpose()
        .map_err(|e| BuildError::Invalid(e.to_string()))?
        .into_iter()
        .collect();
    let mut builder = scratch_builder();
    apply_changes(builder.config_mut(), changes)?;
    let layer = ingest_layer(store, reader)?;
    let mut history = History::default();
    let now = crate::now();
    history.set_created(Some(now.clone()));
    history.set_comment(Some("Imported from -".to_string()));
    builder.add_layer(layer, history);
    builder.config_mut().oci.set_created(Some(now));
    let built = builder.build(MediaFlavor::Oci)?;
    Ok(store.put_built(&built, tags, None)?)
}

/// An empty image for the host platform.
pub(crate) fn scratch_builder() -> ImageBuilder {
    let host = Platform::host();
    ImageBuilder::scratch(
        Os::from(host.os.as_str()),
        Arch::from(host.architecture.as_str()),
    )
}

/// Applies `--change` instructions: metadata instructions and WORKDIR only.
fn apply_changes(config: &mut ImageConfig, changes: &[String]) -> Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let source = format!("FROM scratch\n{}\n", changes.join("\n"));
    let render = |e: kiln_dockerfile::Error| BuildError::Dockerfile(e.render("--change", &source));
    let ast = kiln_dockerfile::parser::parse(&source).map_err(render)?;
    let df =
        kiln_dockerfile::stages::stages(&ast, &source, &BTreeMap::new(), &StageOptions::default())
            .map_err(render)?;
    let mut state = MetaState::default();
    for stage in &df.stages {
        for ex in &stage.instructions {
            match &ex.command.instruction {
                Instruction::Workdir(w) => {
                    let dir = metadata::workdir(config, &w.path.value);
                    config.update_runtime(|c| {
                        c.set_working_dir(Some(dir));
                    });
                }
                other => {
                    if metadata::apply(config, &mut state, other)? == Applied::NotMetadata {
                        return Err(BuildError::Invalid(format!(
                            "{} is not a valid change command",
                            other.name()
                        )));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Streams the tarball into the content store as a gzip blob, hashing the plain tar on the way.
fn ingest_layer(store: &Store, reader: impl Read) -> Result<LayerInfo> {
    let mut input = BufReader::new(reader);
    let head = input.fill_buf().map_err(read_err)?;
    let gzip = head.starts_with(&GZIP_MAGIC);
    let mut tar: Box<dyn Read> = if gzip {
        Box::new(GzDecoder::new(input))
    } else {
        Box::new(input)
    };
    let blob = store.content().writer()?;
    let mut hashed = Sha256Writer::new(GzEncoder::new(blob, Compression::default()));
    io::copy(&mut tar, &mut hashed).map_err(read_err)?;
    let (encoder, diff_id, _) = hashed.finish();
    let blob = encoder.finish().map_err(read_err)?;
    let (digest, size) = blob.commit(None)?;
    Ok(LayerInfo {
        digest,
        diff_id,
        size,
        media_type: MediaType::ImageLayerGzip,
    })
}

fn read_err(e: io::Error) -> BuildError {
    BuildError::Io {
        action: "importing",
        path: "rootfs tarball".into(),
        source: e,
    }
}
