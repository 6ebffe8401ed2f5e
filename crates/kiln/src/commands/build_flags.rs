//! `kiln build` flags as buildx spells them: `--secret`, `--platform`, `--compression`, and the
//! filesystem outputs `--output type=local|tar`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context as _, anyhow, bail};
use clap::{Args, ValueEnum};
use kiln_build::{Compression, SecretSource};

#[derive(Debug, Args)]
pub struct FlagArgs {
    /// A secret for `RUN --mount=type=secret`: `id=ID,src=FILE` or `id=ID,env=VAR`
    /// (`type=file|env`); never stored in the image nor in the cache; repeatable
    #[arg(long = "secret", value_name = "id=ID,src=FILE|env=VAR")]
    pub secrets: Vec<String>,
    /// Target platform (`os/arch[/variant]`); RUN steps can only run for the host's
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<String>,
    /// Compression of the layers the build makes; steps served by the cache keep the layer
    /// they recorded, whatever its compression (as BuildKit without force-compression)
    #[arg(long, value_enum, default_value_t = CompressionArg::Gzip)]
    pub compression: CompressionArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompressionArg {
    Gzip,
    Zstd,
    Uncompressed,
}

impl CompressionArg {
    pub fn layer(self) -> Compression {
        match self {
            Self::Gzip => Compression::Gzip,
            Self::Zstd => Compression::Zstd,
            Self::Uncompressed => Compression::None,
        }
    }
}

/// `--secret` values by id; a file source must exist now (a missing env var is only a missing
/// secret, as with buildx).
pub fn secrets(raw: &[String]) -> anyhow::Result<BTreeMap<String, SecretSource>> {
    raw.iter()
        .map(|item| {
            let (id, source) = parse_secret(item)?;
            if let SecretSource::File(path) = &source {
                std::fs::metadata(path).map_err(|e| {
                    anyhow!("--secret {item:?}: cannot read {}: {e}", path.display())
                })?;
            }
            Ok((id, source))
        })
        .collect()
}

/// One `--secret`, parsed as buildx does: `id`, `src`/`source`, `env`, `type=file|env`; without
/// a source, the variable named like the id if it is set, else the file named like it.
fn parse_secret(item: &str) -> anyhow::Result<(String, SecretSource)> {
    let (mut id, mut src, mut env, mut kind) = (None, None, None, None);
    for field in item.split(',') {
        let Some((key, value)) = field.split_once('=') else {
            bail!("invalid --secret {item:?}: field {field:?} must be a key=value pair");
        };
        match key.to_ascii_lowercase().as_str() {
            "id" => id = Some(value.to_owned()),
            "src" | "source" => src = Some(value.to_owned()),
            "env" => env = Some(value.to_owned()),
            "type" if matches!(value, "file" | "env") => kind = Some(value.to_owned()),
            "type" => bail!("invalid --secret {item:?}: unsupported type {value:?} (file or env)"),
            other => bail!(
                "invalid --secret {item:?}: unknown key {other:?} (expected id, src, env or type)"
            ),
        }
    }
    let id = id
        .filter(|i| !i.is_empty())
        .ok_or_else(|| anyhow!("invalid --secret {item:?}: id=ID is required"))?;
    if kind.as_deref() == Some("env") && env.is_none() {
        env = src.take();
    }
    let source = match (src, env) {
        (Some(_), Some(_)) => bail!("invalid --secret {item:?}: give src= or env=, not both"),
        (Some(path), None) => SecretSource::File(path.into()),
        (None, Some(var)) => SecretSource::Env(var),
        (None, None) if kind.as_deref() == Some("env") || std::env::var_os(&id).is_some() => {
            SecretSource::Env(id.clone())
        }
        (None, None) => SecretSource::File(id.clone().into()),
    };
    Ok((id, source))
}

/// Where a filesystem output goes.
#[derive(Debug, PartialEq, Eq)]
pub enum RootfsDest {
    Dir(PathBuf),
    Tar(PathBuf),
    Stdout,
}

/// Where `--output` sends the result.
#[derive(Debug, PartialEq, Eq)]
pub enum Output {
    /// The store only (the default).
    Image,
    /// A `docker load` archive.
    Docker(PathBuf),
    /// An OCI layout tarball.
    Oci(PathBuf),
    /// `type=local|tar`: the target stage's filesystem.
    Rootfs(RootfsDest),
}

/// `--output type=image|docker|oci|local|tar[,dest=PATH]` (tar: `dest=-` is stdout), or buildx's
/// shorthands `DIR` and `-`.
pub fn parse_output(raw: Option<&str>) -> anyhow::Result<Output> {
    let Some(raw) = raw else {
        return Ok(Output::Image);
    };
    if !raw.contains('=') {
        return Ok(Output::Rootfs(match raw {
            "-" => RootfsDest::Stdout,
            "" => bail!("invalid --output \"\": expected type=TYPE[,dest=PATH] or a directory"),
            dir => RootfsDest::Dir(dir.into()),
        }));
    }
    let (mut kind, mut dest) = ("image", None);
    for field in raw.split(',') {
        match field.split_once('=') {
            Some(("type", v)) => kind = v,
            Some(("dest", v)) => dest = Some(v).filter(|d| !d.is_empty()),
            Some((key, _)) => bail!("invalid --output {raw:?}: unknown field {key:?}"),
            None => bail!("invalid --output {raw:?}: unknown field {field:?}"),
        }
    }
    let needs = |what: &str| anyhow!("--output type={kind} needs dest={what}");
    Ok(match (kind, dest) {
        ("image", _) => Output::Image,
        ("docker", Some(file)) => Output::Docker(file.into()),
        ("oci", Some(file)) => Output::Oci(file.into()),
        ("local", Some(dir)) => Output::Rootfs(RootfsDest::Dir(dir.into())),
        ("tar", Some("-")) => Output::Rootfs(RootfsDest::Stdout),
        ("tar", Some(file)) => Output::Rootfs(RootfsDest::Tar(file.into())),
        ("docker" | "oci", None) => return Err(needs("FILE")),
        ("local", None) => return Err(needs("DIR")),
        ("tar", None) => return Err(needs("FILE (or dest=- for stdout)")),
        (other, _) => {
            bail!("--output type={other} is not supported: use image, docker, oci, local or tar")
        }
    })
}

/// Writes the image's filesystem where `dest` says.
pub fn export_rootfs(
    store: &kiln_store::Store,
    image: &kiln_store::ImageRecord,
    dest: &RootfsDest,
) -> anyhow::Result<()> {
    match dest {
        RootfsDest::Dir(dir) => kiln_build::export_rootfs_dir(store, image, dir)
            .with_context(|| format!("writing the image's files into {}", dir.display())),
        RootfsDest::Tar(file) => {
            let out = std::fs::File::create(file)
                .with_context(|| format!("creating {}", file.display()))?;
            kiln_build::export_rootfs_tar(store, image, std::io::BufWriter::new(out))
                .with_context(|| format!("writing {}", file.display()))
        }
        RootfsDest::Stdout => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            kiln_build::export_rootfs_tar(store, image, &mut out)
                .context("writing the image's files to stdout")?;
            out.flush().context("writing the image's files to stdout")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_parse_like_buildx() {
        let p = |s: &str| parse_secret(s).map_err(|e| e.to_string());
        assert_eq!(
            p("id=a,src=/f").unwrap(),
            ("a".into(), SecretSource::File("/f".into()))
        );
        assert_eq!(
            p("id=a,env=V").unwrap(),
            ("a".into(), SecretSource::Env("V".into()))
        );
        assert_eq!(
            p("type=env,id=a,src=V").unwrap(),
            ("a".into(), SecretSource::Env("V".into()))
        );
        assert!(
            p("id=a,bogus=1")
                .unwrap_err()
                .contains("unknown key \"bogus\"")
        );
        assert!(p("src=/f").unwrap_err().contains("id=ID is required"));
        assert!(p("id=a,type=ssh").unwrap_err().contains("unsupported type"));
        assert!(p("id=a,src").unwrap_err().contains("key=value"));
    }

    #[test]
    fn outputs_parse_like_buildx() {
        let p = |s: &str| parse_output(Some(s)).map_err(|e| e.to_string());
        let rootfs = |d: RootfsDest| Ok(Output::Rootfs(d));
        assert_eq!(parse_output(None).unwrap(), Output::Image);
        assert_eq!(p("out"), rootfs(RootfsDest::Dir("out".into())));
        assert_eq!(p("-"), rootfs(RootfsDest::Stdout));
        assert_eq!(p("type=tar,dest=-"), rootfs(RootfsDest::Stdout));
        assert_eq!(
            p("type=tar,dest=a.tar"),
            rootfs(RootfsDest::Tar("a.tar".into()))
        );
        assert_eq!(p("type=local,dest=d"), rootfs(RootfsDest::Dir("d".into())));
        assert_eq!(p("type=oci,dest=x"), Ok(Output::Oci("x".into())));
        assert_eq!(p("type=docker,dest=x"), Ok(Output::Docker("x".into())));
        assert_eq!(p("type=image"), Ok(Output::Image));
        assert!(p("type=local").unwrap_err().contains("needs dest=DIR"));
        assert!(p("type=tar,dest=").unwrap_err().contains("needs dest=FILE"));
        assert!(p("type=docker").unwrap_err().contains("needs dest=FILE"));
        assert!(
            p("type=local,dest=d,x=1")
                .unwrap_err()
                .contains("unknown field")
        );
        assert!(p("type=registry").unwrap_err().contains("not supported"));
    }
}
