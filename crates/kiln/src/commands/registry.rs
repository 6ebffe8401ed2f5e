//! `kiln pull`, `push`, `login` and `logout`: the store and registries, as `docker` talks to them.
//! `kiln build` uses the same pull and push for its base images, `--pull` and `--push`.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;
use kiln_build::{FetchError, ImageFetcher};
use kiln_image::Reference;
use kiln_registry::{AuthSource, Client, Platform, RegistryOptions};
use kiln_store::{PutImage, Store, StoreError};

use super::store;
use crate::cli::GlobalArgs;

/// How registries are reached; global, like the docker daemon's settings.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// Registry (`host` or `host:port`) reached over HTTPS without certificate checks, or plain
    /// HTTP; repeatable (localhost and 127.0.0.1 always are)
    #[arg(long = "insecure-registry", global = true, value_name = "HOST")]
    pub insecure: Vec<String>,
    /// Directory of per-registry CA certificates laid out like `/etc/docker/certs.d`
    /// (`DIR/HOST[:PORT]/*.crt`); repeatable
    #[arg(
        long = "certs-dir",
        global = true,
        value_name = "DIR",
        default_value = "/etc/docker/certs.d"
    )]
    pub certs_dirs: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Platform to pick from a multi-platform image, as `os/arch[/variant]` (default: the host's)
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// Image to pull
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    pub reference: String,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Image to push; it must be tagged with this name in the store
    #[arg(value_name = "NAME[:TAG]")]
    pub reference: String,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Username (asked for on a terminal when missing)
    #[arg(short = 'u', long = "username")]
    pub username: Option<String>,
    /// Password (visible to other users of the machine: prefer --password-stdin)
    #[arg(short = 'p', long = "password", conflicts_with = "password_stdin")]
    pub password: Option<String>,
    /// Take the password from stdin
    #[arg(long = "password-stdin")]
    pub password_stdin: bool,
    /// Registry host (default: Docker Hub)
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// Registry host (default: Docker Hub)
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
}

/// A registry client configured by the global flags, for `platform` (default: the host's).
pub(super) fn client(global: &GlobalArgs, platform: Option<&str>) -> anyhow::Result<Client> {
    let mut opts = RegistryOptions {
        ca_dirs: global.registry.certs_dirs.clone(),
        auth: AuthSource::from_env(),
        ..RegistryOptions::default()
    };
    opts.insecure
        .extend(global.registry.insecure.iter().cloned());
    if let Some(p) = platform {
        opts.platform = p
            .parse::<Platform>()
            .with_context(|| format!("invalid --platform {p:?}"))?;
    }
    Ok(Client::new(opts))
}

fn parse_reference(name: &str) -> anyhow::Result<Reference> {
    Reference::parse(name).with_context(|| format!("invalid reference format: {name:?}"))
}

pub fn pull(global: &GlobalArgs, args: &PullArgs) -> anyhow::Result<ExitCode> {
    let reference = parse_reference(&args.reference)?;
    let client = client(global, args.platform.as_deref())?;
    let store = store::open(global)?;
    if !names_tag_or_digest(&args.reference) {
        println!("Using default tag: latest");
    }
    pull_into(&store, &client, &reference, &mut std::io::stdout().lock())?;
    println!("{reference}");
    Ok(ExitCode::SUCCESS)
}

/// Whether `name` spells out a tag or digest (`docker pull` says when it defaults to `latest`).
fn names_tag_or_digest(name: &str) -> bool {
    name.contains('@')
        || name
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':'))
}

/// Pulls `reference` into the store and tags it there, printing docker's pull lines to `out`.
/// Every error names `reference` (the registry's errors all do).
fn pull_into(
    store: &Store,
    client: &Client,
    reference: &Reference,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let name = reference.to_string();
    let before = store.resolve(&name).ok().map(|r| r.id);
    let label = reference.tag().map_or_else(
        || {
            reference
                .digest()
                .map(ToString::to_string)
                .unwrap_or_default()
        },
        str::to_string,
    );
    writeln!(out, "{label}: Pulling from {}", reference.path())?;
    let pulled = store::leased(store, |_| {
        let pulled = client.pull(store.content(), reference)?;
        let tags = match reference.digest() {
            Some(_) => Vec::new(),
            None => vec![reference.clone()],
        };
        store
            .put_image(&PutImage {
                manifest: pulled.manifest_digest.clone(),
                tags,
                intermediate: None,
            })
            .with_context(|| format!("storing {name}"))?;
        Ok(pulled)
    })?;
    let digest = pulled
        .index_digest
        .as_ref()
        .unwrap_or(&pulled.manifest_digest);
    writeln!(out, "Digest: {digest}")?;
    let status = match before {
        Some(id) if id == pulled.config_digest => "Image is up to date for",
        _ => "Downloaded newer image for",
    };
    writeln!(out, "Status: {status} {}", reference.familiar_string())?;
    Ok(())
}

pub fn push(global: &GlobalArgs, args: &PushArgs) -> anyhow::Result<ExitCode> {
    let reference = parse_reference(&args.reference)?;
    let client = client(global, None)?;
    let store = store::open(global)?;
    push_from(&store, &client, &reference, &mut std::io::stdout().lock())?;
    Ok(ExitCode::SUCCESS)
}

/// Pushes the image tagged `reference` in the store, printing docker's push lines to `out`.
fn push_from(
    store: &Store,
    client: &Client,
    reference: &Reference,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let name = reference.to_string();
    if reference.digest().is_some() {
        bail!("cannot push {name}: push a tag, not a digest");
    }
    let image = match store.resolve(&name) {
        Err(StoreError::NotFound(_)) => {
            bail!("an image does not exist locally with the tag: {name}")
        }
        found => found.with_context(|| format!("looking up {name} in the store"))?,
    };
    writeln!(
        out,
        "The push refers to repository [{}]",
        reference.repository()
    )?;
    let digest = client.push(store.content(), &image.manifest_digest, reference)?;
    let size = store
        .content()
        .size(&digest)
        .with_context(|| format!("reading the pushed manifest of {name}"))?;
    let tag = reference.tag().unwrap_or("latest");
    writeln!(out, "{tag}: digest: {digest} size: {size}")?;
    Ok(())
}

pub fn login(global: &GlobalArgs, args: &LoginArgs) -> anyhow::Result<ExitCode> {
    let server = args.server.clone().unwrap_or_default();
    let username = match &args.username {
        Some(u) => u.clone(),
        None => prompt_username()?,
    };
    let password = match (&args.password, args.password_stdin) {
        (Some(p), _) => {
            eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
            p.clone()
        }
        (None, true) => read_password_stdin()?,
        (None, false) => bail!("a password is needed: pass --password-stdin or -p PASSWORD"),
    };
    if username.is_empty() || password.is_empty() {
        bail!(
            "cannot log in to {}: username and password must not be empty",
            shown(&server)
        );
    }
    client(global, None)?.login(&server, &username, &password)?;
    println!("Login Succeeded");
    Ok(ExitCode::SUCCESS)
}

pub fn logout(global: &GlobalArgs, args: &LogoutArgs) -> anyhow::Result<ExitCode> {
    let server = args.server.clone().unwrap_or_default();
    let removed = client(global, None)?
        .logout(&server)
        .with_context(|| format!("logging out of {}", shown(&server)))?;
    if removed {
        println!("Removing login credentials for {}", shown(&server));
    } else {
        println!("Not logged in to {}", shown(&server));
    }
    Ok(ExitCode::SUCCESS)
}

/// The registry as messages name it (Docker Hub when empty).
fn shown(server: &str) -> &str {
    if server.is_empty() {
        "docker.io"
    } else {
        server
    }
}

fn prompt_username() -> anyhow::Result<String> {
    if !std::io::stdin().is_terminal() {
        bail!("a username is needed: pass -u USERNAME");
    }
    eprint!("Username: ");
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the username")?;
    Ok(line.trim().to_string())
}

fn read_password_stdin() -> anyhow::Result<String> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("reading the password from stdin")?;
    Ok(text.trim_end_matches(['\n', '\r']).to_string())
}

/// `kiln build`'s fetcher: pulls base images with the same code as `kiln pull`, printing its
/// lines on stderr (stdout is kept for `-q`'s image ID).
#[derive(Debug)]
struct PullFetcher(Client);

/// The fetcher `kiln build` hands the engine, configured by the global registry flags.
pub fn fetcher(global: &GlobalArgs) -> anyhow::Result<Arc<dyn ImageFetcher>> {
    Ok(Arc::new(PullFetcher(client(global, None)?)))
}

impl ImageFetcher for PullFetcher {
    fn fetch(&self, store: &Store, name: &str) -> Result<(), FetchError> {
        let reference = parse_reference(name)?;
        pull_into(store, &self.0, &reference, &mut std::io::stderr().lock())
            .map_err(|e| super::render_error(&e).into())
    }
}

/// `kiln build --push`: pushes every `-t` tag of the result, printing on stderr.
pub fn push_tags(global: &GlobalArgs, store: &Store, tags: &[String]) -> anyhow::Result<()> {
    let client = client(global, None)?;
    for tag in tags {
        let reference = parse_reference(tag)?;
        push_from(store, &client, &reference, &mut std::io::stderr().lock())?;
    }
    Ok(())
}
