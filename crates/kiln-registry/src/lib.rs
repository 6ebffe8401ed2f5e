//! Pull and push images over the OCI distribution protocol.
//!
//! The API is blocking so the CLI and build engine stay synchronous; blob
//! transfers run on a few scoped threads. Everything downloaded is streamed
//! into a [`ContentStore`] and verified against its digest before it is
//! committed; a manifest is only stored once every blob it names is.
//!
//! ```no_run
//! use kiln_content::ContentStore;
//! use kiln_image::Reference;
//! use kiln_registry::{Client, RegistryOptions};
//!
//! let store = ContentStore::open("/var/lib/kiln/content")?;
//! let client = Client::new(RegistryOptions::default());
//! let pulled = client.pull(&store, &Reference::parse("node:14")?)?;
//! let target = Reference::parse("localhost:5000/node:14")?;
//! client.push(&store, &pulled.manifest_digest, &target)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod auth;
mod blob;
mod endpoint;
mod error;
mod platform;
mod pull;
mod push;
mod transport;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use kiln_content::{ContentStore, Digest};
use kiln_image::Reference;

pub use auth::AuthSource;
pub use error::{Error, Result};
pub use platform::Platform;

use auth::Credentials;
use error::Target;
use transport::{Endpoint, Req, Session, fetch_token, lock};

/// Blobs up to this size are uploaded in one PUT; larger ones in chunks.
pub const DEFAULT_CHUNK_SIZE: u64 = 16 * 1024 * 1024;

/// How to reach registries and which image to pick.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Hosts (`host` or `host:port`) treated like Docker's
    /// `insecure-registries`: HTTPS without certificate verification, then
    /// plain HTTP if HTTPS does not answer.
    pub insecure: Vec<String>,
    /// Directories laid out like `/etc/docker/certs.d`: `DIR/HOST[:PORT]/*.crt`
    /// are extra CA certificates trusted for that registry.
    pub ca_dirs: Vec<PathBuf>,
    /// Where credentials come from and `login` writes to.
    pub auth: AuthSource,
    /// Platform to pick from manifest lists and check single manifests against.
    pub platform: Platform,
    /// Blobs larger than this are uploaded in chunks of this size.
    pub chunk_size: u64,
    /// Blob downloads or uploads in flight at once.
    pub parallelism: usize,
}

impl Default for RegistryOptions {
    /// Docker's defaults: loopback registries may use HTTP, certs from
    /// `/etc/docker/certs.d`, credentials from `~/.docker/config.json`.
    fn default() -> Self {
        Self {
            insecure: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            ca_dirs: vec![PathBuf::from("/etc/docker/certs.d")],
            auth: AuthSource::from_env(),
            platform: Platform::host(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            parallelism: 3,
        }
    }
}

/// What a pull stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulled {
    /// The reference pulled, as given.
    pub reference: Reference,
    /// The platform-specific image manifest.
    pub manifest_digest: Digest,
    /// The image config (the image ID).
    pub config_digest: Digest,
    /// The manifest list / index the manifest was chosen from, if any; this
    /// is the digest `docker pull` reports for multi-platform images.
    pub index_digest: Option<Digest>,
}

/// A registry client. Cheap to share across threads; connections, tokens
/// and the HTTP/HTTPS decision per registry are cached for its lifetime.
#[derive(Debug)]
pub struct Client {
    opts: RegistryOptions,
    endpoints: Mutex<HashMap<String, Arc<Endpoint>>>,
    /// Repositories on each registry known to hold a blob, as mount sources.
    sources: Mutex<HashMap<Digest, Vec<(String, String)>>>,
}

impl Client {
    /// A client with `opts`. No network traffic happens until first use.
    pub fn new(opts: RegistryOptions) -> Self {
        Self {
            opts,
            endpoints: Mutex::new(HashMap::new()),
            sources: Mutex::new(HashMap::new()),
        }
    }

    /// The options in use.
    pub fn options(&self) -> &RegistryOptions {
        &self.opts
    }

    /// Pulls `reference` (for the configured platform) into `content`.
    pub fn pull(&self, content: &ContentStore, reference: &Reference) -> Result<Pulled> {
        let session = self.session(reference, &["pull"])?;
        pull::pull(self, &session, content, reference)
    }

    /// The manifest or index `reference` names, verified against its digest, without any of
    /// the blobs it refers to: for artifacts whose blobs are fetched one by one, on demand.
    pub fn manifest(&self, reference: &Reference) -> Result<(Digest, Vec<u8>)> {
        let session = self.session(reference, &["pull"])?;
        pull::fetch_by_reference(&session, reference)
    }

    /// Downloads the blob `desc` of `reference`'s repository into `content` (verified),
    /// unless it is there already.
    pub fn fetch_blob(
        &self,
        content: &ContentStore,
        reference: &Reference,
        desc: &oci_spec::image::Descriptor,
    ) -> Result<()> {
        let session = self.session(reference, &["pull"])?;
        blob::fetch(&session, content, desc)
    }

    /// Pushes the image (manifest or index) `manifest_digest` from `content`
    /// to `reference`; returns the digest the registry stored it under.
    pub fn push(
        &self,
        content: &ContentStore,
        manifest_digest: &Digest,
        reference: &Reference,
    ) -> Result<Digest> {
        let session = self.session(reference, &["pull", "push"])?;
        push::push(self, &session, content, manifest_digest, reference)
    }

    /// Checks `username`/`password` against `registry` and saves them in
    /// the Docker config (or its credential helper) on success.
    /// `registry` may be spelt as for `docker login` (`https://host/`, or
    /// empty for Docker Hub).
    pub fn login(&self, registry: &str, username: &str, password: &str) -> Result<()> {
        let registry = &auth::normalize_key(registry);
        let creds = Credentials {
            username: username.into(),
            password: password.into(),
        };
        let target = Target {
            reference: registry.to_string(),
            registry: registry.to_string(),
        };
        let endpoint = Arc::new(endpoint::connect(
            &self.opts,
            registry,
            &target,
            Some(creds.clone()),
        )?);
        verify_login(&endpoint, &target)?;
        self.opts.auth.store(registry, &creds)?;
        // Later operations must use the new credentials.
        lock(&self.endpoints).remove(registry);
        Ok(())
    }

    /// Forgets saved credentials for `registry`; true if there were any.
    pub fn logout(&self, registry: &str) -> Result<bool> {
        let registry = &auth::normalize_key(registry);
        lock(&self.endpoints).remove(registry);
        self.opts.auth.erase(registry)
    }

    /// A session on `reference`'s repository with `actions` access.
    fn session(&self, reference: &Reference, actions: &[&str]) -> Result<Session> {
        let host = reference.registry();
        let target = Target {
            reference: reference.to_string(),
            registry: host.to_string(),
        };
        let endpoint = self.endpoint(host, &target)?;
        Ok(Session {
            endpoint,
            target,
            repo: reference.path().to_string(),
            scopes: vec![format!(
                "repository:{}:{}",
                reference.path(),
                actions.join(",")
            )],
        })
    }

    fn endpoint(&self, host: &str, target: &Target) -> Result<Arc<Endpoint>> {
        if let Some(e) = lock(&self.endpoints).get(host) {
            return Ok(e.clone());
        }
        let creds = self.opts.auth.lookup(host)?;
        let endpoint = Arc::new(endpoint::connect(&self.opts, host, target, creds)?);
        lock(&self.endpoints).insert(host.to_string(), endpoint.clone());
        Ok(endpoint)
    }

    /// Remembers that `repo` on `host` holds `digest`.
    fn record_source(&self, digest: &Digest, host: &str, repo: &str) {
        let mut sources = lock(&self.sources);
        let entry = sources.entry(digest.clone()).or_default();
        let item = (host.to_string(), repo.to_string());
        if !entry.contains(&item) {
            entry.push(item);
        }
    }

    /// Another repository on `host` known to hold `digest`, to mount from.
    fn mount_source(&self, digest: &Digest, host: &str, repo: &str) -> Option<String> {
        lock(&self.sources)
            .get(digest)?
            .iter()
            .find(|(h, r)| h == host && r != repo)
            .map(|(_, r)| r.clone())
    }
}

/// Proves the credentials work: a Basic registry must accept them on
/// `/v2/`; a token server must issue a token for them.
fn verify_login(endpoint: &Arc<Endpoint>, target: &Target) -> Result<()> {
    let challenge = lock(&endpoint.challenge).clone();
    if let transport::Challenge::Bearer { realm, service } = challenge {
        fetch_token(endpoint, target, &realm, service.as_deref(), &[])?;
        return Ok(());
    }
    let session = Session {
        endpoint: endpoint.clone(),
        target: target.clone(),
        repo: String::new(),
        scopes: Vec::new(),
    };
    let resp = session.send(&Req::new("GET", format!("{}/v2/", endpoint.base)))?;
    match resp.status() {
        200..=299 => Ok(()),
        status => Err(target.protocol("GET /v2/".into(), status, transport::error_message(resp))),
    }
}
