//! `kiln inspect` / `kiln image inspect`: docker's image inspect document.

use std::process::ExitCode;

use anyhow::Context;
use kiln_store::{ImageRecord, Store};
use serde_json::{Value, json};

use super::render_error;
use super::template::Template;
use crate::cli::{GlobalArgs, InspectArgs};

/// Largest config read into memory.
const MAX_CONFIG: u64 = 64 << 20;

/// Prints the images found (a JSON array, or one template line each); exit 1 if any is missing.
pub fn run(global: &GlobalArgs, args: &InspectArgs) -> anyhow::Result<ExitCode> {
    let template = args
        .format
        .as_deref()
        .map(Template::parse)
        .transpose()
        .context("parsing --format")?;
    let store = super::store::open(global)?;
    let mut docs = Vec::new();
    let mut failed = false;
    for name in &args.images {
        match store
            .resolve(name)
            .map_err(anyhow::Error::from)
            .and_then(|img| document(&store, &img))
        {
            Ok(doc) => docs.push(doc),
            Err(err) => {
                eprintln!("error: {}", render_error(&err));
                failed = true;
            }
        }
    }
    match template {
        Some(t) => docs
            .iter()
            .try_for_each(|d| t.render(d).map(|line| println!("{line}")))?,
        None => println!("{}", serde_json::to_string_pretty(&docs)?),
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The image's config blob, parsed.
pub fn config(store: &Store, img: &ImageRecord) -> anyhow::Result<Value> {
    let bytes = store
        .content()
        .read_bytes(&img.id, MAX_CONFIG)
        .with_context(|| format!("reading the config of image {}", img.id))?;
    serde_json::from_slice(&bytes)
        .with_context(|| format!("parsing the config of image {}", img.id))
}

fn document(store: &Store, img: &ImageRecord) -> anyhow::Result<Value> {
    let config = config(store, img)?;
    let text = |key: &str| {
        config
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let mut doc = json!({
        "Id": img.id.to_string(),
        "RepoTags": img.tags.iter().map(|t| t.familiar_string()).collect::<Vec<_>>(),
        "RepoDigests": img.repo_digests().iter().map(|r| r.familiar_string()).collect::<Vec<_>>(),
        "Parent": "",
        "Comment": comment(&config),
        "Created": img.created.clone().unwrap_or_default(),
        "DockerVersion": text("docker_version"),
        "Author": text("author"),
        "Config": config.get("config").cloned().unwrap_or(Value::Null),
        "Architecture": text("architecture"),
    });
    let fields = doc
        .as_object_mut()
        .context("building the inspect document")?;
    if let Some(variant) = config.get("variant") {
        fields.insert("Variant".into(), variant.clone());
    }
    fields.insert("Os".into(), json!(text("os")));
    fields.insert("Size".into(), json!(img.size));
    fields.insert("RootFS".into(), rootfs(&config));
    fields.insert("Metadata".into(), json!({ "LastTagTime": stored_at(img) }));
    Ok(doc)
}

/// The config's `comment` (set by `docker import -m`), else the last history comment.
fn comment(config: &Value) -> String {
    config
        .get("comment")
        .and_then(Value::as_str)
        .or_else(|| {
            config
                .get("history")?
                .as_array()?
                .last()?
                .get("comment")?
                .as_str()
        })
        .unwrap_or_default()
        .to_owned()
}

fn rootfs(config: &Value) -> Value {
    let rootfs = config.get("rootfs");
    json!({
        "Type": rootfs.and_then(|r| r.get("type")).cloned().unwrap_or(json!("layers")),
        "Layers": rootfs.and_then(|r| r.get("diff_ids")).cloned().unwrap_or(json!([])),
    })
}

fn stored_at(img: &ImageRecord) -> String {
    chrono::DateTime::from_timestamp(img.stored_at, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}
