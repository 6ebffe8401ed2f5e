//! `kiln import`: a rootfs tarball becomes a one-layer image, as `docker import` makes it.

use std::fs::File;
use std::io::{BufReader, IsTerminal, Read};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use kiln_image::{Reference, canonical_json};
use kiln_store::{ImageRecord, PutImage, Store};
use serde_json::{Value, json};

use crate::cli::{GlobalArgs, ImportArgs};

/// Read buffer for the tarball.
const IO_BUFFER: usize = 1 << 20;
/// Largest manifest read into memory.
const MAX_MANIFEST: u64 = 4 << 20;

pub fn run(global: &GlobalArgs, args: &ImportArgs) -> anyhow::Result<ExitCode> {
    let tags: Vec<Reference> = args
        .reference
        .iter()
        .map(|r| Reference::parse(r).with_context(|| format!("invalid reference {r:?}")))
        .collect::<anyhow::Result<_>>()?;
    let (reader, source) = open_input(&args.file)?;
    let store = super::store::open(global)?;
    let img = super::store::leased(&store, |_| {
        import(&store, args, reader, tags).with_context(|| format!("importing {source}"))
    })?;
    println!("{}", img.id);
    Ok(ExitCode::SUCCESS)
}

/// The tarball (`-` is stdin) and the name messages call it by.
fn open_input(file: &Path) -> anyhow::Result<(Box<dyn Read>, String)> {
    if file == Path::new("-") {
        if std::io::stdin().is_terminal() {
            bail!("requested import from stdin, but stdin is a terminal: redirect a tarball to it");
        }
        return Ok((Box::new(std::io::stdin().lock()), "stdin".to_owned()));
    }
    let reader = File::open(file).with_context(|| format!("opening {}", file.display()))?;
    Ok((Box::new(reader), file.display().to_string()))
}

/// With `-m`, the image is imported untagged, then rewritten with the message and tagged.
fn import(
    store: &Store,
    args: &ImportArgs,
    reader: Box<dyn Read>,
    tags: Vec<Reference>,
) -> anyhow::Result<ImageRecord> {
    let reference = match args.message {
        Some(_) => None,
        None => args.reference.as_deref(),
    };
    let reader = BufReader::with_capacity(IO_BUFFER, reader);
    let img = kiln_build::import_rootfs(store, reader, reference, &args.changes)?;
    match &args.message {
        Some(message) => with_message(store, &img, message, tags),
        None => Ok(img),
    }
}

/// Rewrites the imported image's config with `-m`'s message (as the config comment and the
/// history comment), records that image under `tags` and drops the first one.
fn with_message(
    store: &Store,
    img: &ImageRecord,
    message: &str,
    tags: Vec<Reference>,
) -> anyhow::Result<ImageRecord> {
    let mut config = super::inspect::config(store, img)?;
    config["comment"] = json!(message);
    if let Some(entry) = config.get_mut("history").and_then(|h| h.get_mut(0)) {
        entry["comment"] = json!(message);
    }
    let config_bytes = canonical_json(&config).context("serialising the image config")?;
    let config_digest = store
        .content()
        .write_bytes(&config_bytes)
        .context("storing the image config")?;
    let manifest_bytes = store
        .content()
        .read_bytes(&img.manifest_digest, MAX_MANIFEST)
        .context("reading the imported manifest")?;
    let mut manifest: Value =
        serde_json::from_slice(&manifest_bytes).context("parsing the imported manifest")?;
    manifest["config"]["digest"] = json!(config_digest.to_string());
    manifest["config"]["size"] = json!(config_bytes.len());
    let manifest = canonical_json(&manifest).context("serialising the manifest")?;
    let manifest = store
        .content()
        .write_bytes(&manifest)
        .context("storing the manifest")?;
    let record = store.put_image(&PutImage {
        manifest,
        tags,
        intermediate: None,
    })?;
    store
        .remove_image(img.id.as_ref(), true)
        .context("removing the image without the message")?;
    Ok(record)
}
