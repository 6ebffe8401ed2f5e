//! `kiln build --cache-to` / `--cache-from`, in buildx's syntax: `type=local,dest=DIR` /
//! `type=local,src=DIR` (an OCI layout directory) and `type=registry,ref=HOST/REPO:TAG`,
//! with `mode=max|min` and `mounts=true` for exports.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, anyhow, bail};
use clap::Args;
use kiln_build::cache_export::{
    CacheExportOptions, CacheMode, CacheSource, LocalCache, export_dir, export_layout,
};
use kiln_build::{BuildCache, FetchError};
use kiln_content::ContentStore;
use kiln_image::Reference;
use kiln_image::oci_spec::image::Descriptor;
use kiln_registry::Client;
use kiln_store::Store;

use super::registry;
use crate::cli::GlobalArgs;

/// `kiln build`'s cache flags (boxed there: they keep the command enum small).
#[derive(Debug, Args)]
pub struct CacheArgs {
    /// Export the step cache: `type=local,dest=DIR[,mode=max|min][,mounts=true]` or
    /// `type=registry,ref=HOST/REPO:TAG`; repeatable
    #[arg(long = "cache-to", value_name = "type=TYPE,...")]
    pub cache_to: Vec<String>,
    /// Use an exported step cache: `type=local,src=DIR` or `type=registry,ref=REF`; repeatable
    #[arg(long = "cache-from", value_name = "type=TYPE,...")]
    pub cache_from: Vec<String>,
}

/// Where a cache goes or comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Location {
    Local(PathBuf),
    Registry(String),
}

/// One `--cache-to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheTo {
    location: Location,
    opts: CacheExportOptions,
}

/// Parses every `--cache-to`.
pub fn parse_cache_to(raw: &[String]) -> anyhow::Result<Vec<CacheTo>> {
    raw.iter().map(|r| parse_to(r)).collect()
}

fn parse_to(raw: &str) -> anyhow::Result<CacheTo> {
    let mut opts = CacheExportOptions::default();
    let location = parse_location(raw, "dest", |key, value| {
        match key {
            "mode" => {
                opts.mode = match value {
                    "max" => CacheMode::Max,
                    "min" => CacheMode::Min,
                    _ => bail!("invalid --cache-to {raw:?}: mode must be max or min"),
                }
            }
            "mounts" => {
                opts.mounts = value.parse().map_err(|_| {
                    anyhow!("invalid --cache-to {raw:?}: mounts must be true or false")
                })?
            }
            _ => bail!("invalid --cache-to {raw:?}: unknown field {key:?}"),
        }
        Ok(())
    })?;
    Ok(CacheTo { location, opts })
}

/// `type=local,<dir_key>=DIR` or `type=registry,ref=REF` (a bare `REF` too), other fields
/// handed to `extra`.
fn parse_location(
    raw: &str,
    dir_key: &str,
    mut extra: impl FnMut(&str, &str) -> anyhow::Result<()>,
) -> anyhow::Result<Location> {
    if !raw.contains('=') {
        return Ok(Location::Registry(raw.to_string()));
    }
    let (mut kind, mut dir, mut reference) = (None, None, None);
    for field in raw.split(',') {
        match field.split_once('=') {
            Some(("type", v)) => kind = Some(v),
            Some((k, v)) if k == dir_key => dir = Some(PathBuf::from(v)),
            Some(("ref", v)) => reference = Some(v.to_string()),
            Some((k, v)) => extra(k, v)?,
            None => bail!("invalid cache option {raw:?}: {field:?} is not KEY=VALUE"),
        }
    }
    match (kind, dir, reference) {
        (Some("local"), Some(dir), _) => Ok(Location::Local(dir)),
        (Some("local"), None, _) => bail!("cache option {raw:?}: type=local needs {dir_key}=DIR"),
        (Some("registry"), _, Some(r)) => Ok(Location::Registry(r)),
        (Some("registry"), _, None) => bail!("cache option {raw:?}: type=registry needs ref=REF"),
        (None, _, _) => bail!("cache option {raw:?}: type= is missing (local or registry)"),
        (Some(other), _, _) => {
            bail!("cache option {raw:?}: type={other} is not supported: use local or registry")
        }
    }
}

/// The engine's sources for every `--cache-from`.
pub fn sources(global: &GlobalArgs, raw: &[String]) -> anyhow::Result<Vec<Arc<dyn CacheSource>>> {
    raw.iter()
        .map(|r| {
            let location = parse_location(r, "src", |key, _| {
                bail!("invalid --cache-from {r:?}: unknown field {key:?}")
            })?;
            Ok(match location {
                Location::Local(dir) => Arc::new(LocalCache::new(dir)) as Arc<dyn CacheSource>,
                Location::Registry(name) => Arc::new(RegistryCache {
                    client: registry::client(global, None)?,
                    reference: parse_reference(&name)?,
                }),
            })
        })
        .collect()
}

/// Exports the build's cache to every `--cache-to`.
pub fn export(
    global: &GlobalArgs,
    store: &Store,
    cache: &BuildCache,
    targets: &[CacheTo],
) -> anyhow::Result<()> {
    for target in targets {
        match &target.location {
            Location::Local(dir) => {
                export_dir(store, cache, &target.opts, dir)
                    .with_context(|| format!("exporting the cache to {}", dir.display()))?;
            }
            Location::Registry(name) => push(global, store, cache, &target.opts, name)
                .with_context(|| format!("exporting the cache to {name}"))?,
        }
    }
    Ok(())
}

/// Writes the cache into a scratch layout in the store, then pushes it as `name`.
fn push(
    global: &GlobalArgs,
    store: &Store,
    cache: &BuildCache,
    opts: &CacheExportOptions,
    name: &str,
) -> anyhow::Result<()> {
    let reference = parse_reference(name)?;
    let tmp = store.tmp_dir()?;
    let layout = ContentStore::open(tmp.path())?;
    let manifest = export_layout(store, cache, opts, &layout)?;
    let client = registry::client(global, None)?;
    client.push(&layout, manifest.digest(), &reference)?;
    Ok(())
}

fn parse_reference(name: &str) -> anyhow::Result<Reference> {
    Reference::parse(name).with_context(|| format!("invalid cache reference {name:?}"))
}

/// A cache pushed to a registry: the manifest is fetched at the start, blobs on a hit.
#[derive(Debug)]
struct RegistryCache {
    client: Client,
    reference: Reference,
}

impl CacheSource for RegistryCache {
    fn describe(&self) -> String {
        format!("type=registry,ref={}", self.reference)
    }

    fn manifest(&self) -> Result<Option<Vec<u8>>, FetchError> {
        match self.client.manifest(&self.reference) {
            Ok((_, bytes)) => Ok(Some(bytes)),
            Err(kiln_registry::Error::ManifestUnknown { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn fetch(&self, desc: &Descriptor, content: &ContentStore) -> Result<(), FetchError> {
        Ok(self.client.fetch_blob(content, &self.reference, desc)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_to_fields() {
        let to = parse_to("type=local,dest=/c,mode=min,mounts=true").unwrap();
        assert_eq!(to.location, Location::Local("/c".into()));
        assert_eq!(to.opts.mode, CacheMode::Min);
        assert!(to.opts.mounts);
        let to = parse_to("type=registry,ref=h:5000/r:cache").unwrap();
        assert_eq!(to.location, Location::Registry("h:5000/r:cache".into()));
        assert_eq!(to.opts, CacheExportOptions::default());
        assert_eq!(
            parse_to("h/r:c").unwrap().location,
            Location::Registry("h/r:c".into())
        );
    }

    #[test]
    fn bad_cache_options_are_errors() {
        for bad in [
            "type=local",
            "type=local,dest=/c,mode=all",
            "type=local,dest=/c,mounts=yes",
            "type=s3,dest=/c",
            "dest=/c",
            "type=local,dest=/c,compression=zstd",
            "type=registry",
        ] {
            assert!(parse_to(bad).is_err(), "{bad}");
        }
    }
}
