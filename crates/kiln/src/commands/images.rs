//! `kiln images` / `kiln image ls`.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, Utc};
use kiln_store::{ImageFilter, ImageRecord, Store};
use serde_json::{Value, json};

use super::human;
use super::table;
use super::template::Template;
use crate::cli::{GlobalArgs, ImagesArgs};

const NONE: &str = "<none>";

pub fn run(global: &GlobalArgs, args: &ImagesArgs) -> anyhow::Result<ExitCode> {
    let (relative, mut filters): (Vec<String>, Vec<String>) = args
        .filters
        .iter()
        .cloned()
        .partition(|f| f.starts_with("since=") || f.starts_with("before="));
    filters.extend(args.reference.iter().map(|r| format!("reference={r}")));
    let filter = ImageFilter::parse(args.all, &filters)?;
    let store = super::store::open(global)?;
    let bounds = relative
        .iter()
        .map(|f| bound(&store, f))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut images = store.list_images(&filter).context("listing images")?;
    images.retain(|img| bounds.iter().all(|b| b.keeps(img)));
    let rows: Vec<Value> = images.iter().flat_map(|img| rows(img, args)).collect();
    print!("{}", render(args, &rows)?);
    Ok(ExitCode::SUCCESS)
}

/// `since=IMAGE` / `before=IMAGE`: images created after / before the named one.
struct Bound {
    since: bool,
    at: DateTime<Utc>,
}

impl Bound {
    fn keeps(&self, img: &ImageRecord) -> bool {
        let at = created_at(img);
        if self.since {
            at > self.at
        } else {
            at < self.at
        }
    }
}

fn bound(store: &Store, filter: &str) -> anyhow::Result<Bound> {
    let (key, name) = filter.split_once('=').unwrap_or((filter, ""));
    let img = store
        .resolve(name)
        .with_context(|| format!("filter {filter}"))?;
    Ok(Bound {
        since: key == "since",
        at: created_at(&img),
    })
}

/// Config `created`, else when the image was stored.
fn created_at(img: &ImageRecord) -> DateTime<Utc> {
    img.created
        .as_deref()
        .and_then(|c| DateTime::parse_from_rfc3339(c).ok())
        .map(|t| t.to_utc())
        .or_else(|| DateTime::from_timestamp(img.stored_at, 0))
        .unwrap_or_default()
}

/// The output for `--format`, `-q` and `--digests`.
fn render(args: &ImagesArgs, rows: &[Value]) -> anyhow::Result<String> {
    let digest = if args.digests { "{{.Digest}}\t" } else { "" };
    let default = format!(
        "table {{{{.Repository}}}}\t{{{{.Tag}}}}\t{digest}{{{{.ID}}}}\t{{{{.CreatedSince}}}}\t{{{{.Size}}}}"
    );
    let format = match args.format.as_deref() {
        _ if args.quiet => "{{.ID}}",
        None | Some("table") => default.as_str(),
        Some("json") => "{{json .}}",
        Some(custom) => custom,
    };
    let (is_table, body) = match format.strip_prefix("table") {
        Some(rest) => (true, rest.trim_start()),
        None => (false, format),
    };
    let template = Template::parse(body).context("parsing --format")?;
    let mut lines = Vec::with_capacity(rows.len() + 1);
    if is_table {
        lines.push(template.render(&headers())?);
    }
    for row in rows {
        lines.push(template.render(row)?);
    }
    if is_table {
        return Ok(table::render(&lines));
    }
    Ok(lines.iter().map(|l| format!("{l}\n")).collect())
}

fn headers() -> Value {
    json!({
        "Containers": "CONTAINERS", "CreatedAt": "CREATED AT", "CreatedSince": "CREATED",
        "Digest": "DIGEST", "ID": "IMAGE ID", "Repository": "REPOSITORY",
        "SharedSize": "SHARED SIZE", "Size": "SIZE", "Tag": "TAG",
        "UniqueSize": "UNIQUE SIZE", "VirtualSize": "SIZE",
    })
}

/// One row per tag (per repository digest with `--digests`); `<none>` rows for dangling images.
fn rows(img: &ImageRecord, args: &ImagesArgs) -> Vec<Value> {
    let id = if args.no_trunc {
        img.id.to_string()
    } else {
        img.short_id()
    };
    let digests: BTreeMap<String, String> = img
        .repo_digests()
        .into_iter()
        .filter_map(|r| Some((r.familiar(), r.digest()?.to_string())))
        .collect();
    names(img)
        .into_iter()
        .map(|(repo, tag)| {
            let digest = digests.get(&repo).map_or(NONE, String::as_str);
            row(img, &id, &repo, &tag, digest)
        })
        .collect()
}

/// (repository, tag) pairs, sorted; `<none>` twice for a dangling image.
pub fn names(img: &ImageRecord) -> Vec<(String, String)> {
    let mut names: Vec<(String, String)> = img
        .tags
        .iter()
        .map(|t| (t.familiar(), t.tag().unwrap_or(NONE).to_owned()))
        .collect();
    names.sort();
    if names.is_empty() {
        names.push((NONE.to_owned(), NONE.to_owned()));
    }
    names
}

/// The fields docker's image formatter offers, in its JSON order.
fn row(img: &ImageRecord, id: &str, repo: &str, tag: &str, digest: &str) -> Value {
    let size = human::size(img.size);
    json!({
        "Containers": "N/A",
        "CreatedAt": human::go_time(img.created.as_deref()),
        "CreatedSince": human::since(img.created.as_deref()),
        "Digest": digest,
        "ID": id,
        "Repository": repo,
        "SharedSize": "N/A",
        "Size": size,
        "Tag": tag,
        "UniqueSize": "N/A",
        "VirtualSize": size,
    })
}
