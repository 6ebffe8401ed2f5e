//! HTTP plumbing shared by pull, push and login: picking http or https for
//! a registry, authenticating (Basic or Bearer tokens cached per scope) and
//! retrying what is safe to retry (dropped connections on reads, 429 with
//! `Retry-After`, 502-504).
//!
//! Why not the `oci-client` crate: it is async-only (a runtime for every
//! caller of this blocking API), restarts a dropped blob download from zero
//! instead of resuming with `Range`, gives up on 429 instead of honouring
//! `Retry-After`, and hashes nothing while streaming into our store. A small
//! blocking client over `ureq` gives all of that with threads and no
//! runtime; `ureq` is already in the workspace.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, SystemTime};

use kiln_content::{ContentStore, Digest};
use serde_json::Value;

use crate::auth::Credentials;
use crate::error::{Result, Target};

/// Attempts per request before a dropped connection or 429 is fatal.
pub(crate) const MAX_ATTEMPTS: u32 = 5;
/// Longest `Retry-After` worth waiting for; longer means "give up now".
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Cap on error bodies read for messages.
const MAX_ERROR_BODY: u64 = 64 * 1024;

/// How a registry wants to be authenticated, from `WWW-Authenticate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    None,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// Parses `Bearer realm="...",service="...",scope="..."` or `Basic realm=...`.
pub(crate) fn parse_challenge(header: &str) -> Option<Challenge> {
    let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(rest);
    let realm = params.get("realm")?.clone();
    Some(Challenge::Bearer {
        realm,
        service: params.get("service").cloned(),
    })
}

/// `key="quoted, value",key2=token` pairs; commas inside quotes belong to
/// the value (scopes such as `repository:a:pull,push` contain them).
fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = s.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            (&quoted[..end], quoted.get(end + 1..).unwrap_or(""))
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        out.insert(key, value.to_string());
        rest = tail.trim_start_matches([',', ' ']);
    }
    out
}

/// One registry host: where its API lives and how it authenticates.
#[derive(Debug)]
pub(crate) struct Endpoint {
    /// `scheme://api-host`, e.g. `https://registry-1.docker.io`.
    pub base: String,
    pub agent: ureq::Agent,
    pub challenge: Mutex<Challenge>,
    pub credentials: Option<Credentials>,
    /// Bearer tokens by scope set; shared by all sessions on this host.
    pub tokens: Mutex<HashMap<String, String>>,
    /// Held while a token is being fetched.
    pub token_fetch: Mutex<()>,
}

/// A request body that can be sent again after a 401.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    Blob {
        content: &'a ContentStore,
        digest: &'a Digest,
        offset: u64,
        len: u64,
    },
}

/// A request to send through a [`Session`].
#[derive(Debug)]
pub(crate) struct Req<'a> {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body<'a>,
    retryable: bool,
}

impl<'a> Req<'a> {
    pub fn new(method: &'static str, url: String) -> Self {
        Self {
            method,
            url,
            headers: Vec::new(),
            body: Body::Empty,
            retryable: false,
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn body(mut self, body: Body<'a>) -> Self {
        self.body = body;
        self
    }

    /// Marks a request with side effects as safe to resend (a manifest PUT:
    /// sending the same document twice stores it once).
    pub fn retryable(mut self) -> Self {
        self.retryable = true;
        self
    }

    /// GET and HEAD may be resent after a dropped connection; blob uploads
    /// may not (their upload session is gone), unless marked retryable.
    fn idempotent(&self) -> bool {
        self.retryable || matches!(self.method, "GET" | "HEAD")
    }

    fn describe(&self) -> String {
        let path = self.url.splitn(4, '/').nth(3).unwrap_or("");
        format!(
            "{} /{}",
            self.method,
            path.split('?').next().unwrap_or(path)
        )
    }
}

/// Operations on one repository with one set of access scopes.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub endpoint: Arc<Endpoint>,
    pub target: Target,
    pub repo: String,
    pub scopes: Vec<String>,
}

impl Session {
    /// `base/v2/<repo>/<tail>`.
    pub fn url(&self, tail: &str) -> String {
        format!("{}/v2/{}/{}", self.endpoint.base, self.repo, tail)
    }

    /// Resolves a `Location` header (absolute, or a path on this registry).
    pub fn resolve(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else if location.starts_with('/') {
            format!("{}{location}", self.endpoint.base)
        } else {
            format!("{}/{location}", self.endpoint.base)
        }
    }

    /// The same session with an extra scope (a cross-repo mount source).
    pub fn with_scope(&self, scope: String) -> Self {
        let mut s = self.clone();
        s.scopes.push(scope);
        s
    }

    /// Sends `req`, authenticating and retrying as needed. Returns any
    /// response other than 401/403 (denied) and exhausted 429s.
    pub fn send(&self, req: &Req<'_>) -> Result<ureq::Response> {
        let mut failures = 0;
        let mut reauthenticated = false;
        loop {
            let auth = self.authorization()?;
            let resp = match self.dispatch(req, auth.as_deref())? {
                Ok(resp) => resp,
                Err(transport) if req.idempotent() && failures + 1 < MAX_ATTEMPTS => {
                    failures += 1;
                    tracing::debug!(%transport, "retrying {}", req.describe());
                    thread::sleep(backoff(failures));
                    continue;
                }
                Err(transport) => return Err(self.target.unreachable(transport)),
            };
            match resp.status() {
                401 if !reauthenticated => {
                    reauthenticated = true;
                    self.reset_auth(&resp);
                }
                401 | 403 => return Err(self.denied(resp)),
                429 => {
                    failures += 1;
                    self.wait_rate_limit(resp, failures)?;
                }
                502..=504 if req.idempotent() && failures + 1 < MAX_ATTEMPTS => {
                    failures += 1;
                    thread::sleep(backoff(failures));
                }
                _ => return Ok(resp),
            }
        }
    }

    /// A 401/403 as an error that says whether credentials were even sent.
    fn denied(&self, resp: ureq::Response) -> crate::Error {
        let status = resp.status();
        let mut message = error_message(resp);
        if status == 401 && self.endpoint.credentials.is_none() {
            message.push_str(" (no credentials configured for this registry: log in first)");
        }
        self.target.denied(status, message)
    }

    /// Sleeps for `Retry-After` (or a backoff), or fails if that is too long
    /// or the attempts are used up.
    fn wait_rate_limit(&self, resp: ureq::Response, failures: u32) -> Result<()> {
        let wait = retry_after(&resp);
        let message = match wait {
            Some(w) => format!("retry after {}s", w.as_secs()),
            None => String::new(),
        };
        if failures >= MAX_ATTEMPTS || wait.is_some_and(|w| w > MAX_RETRY_AFTER) {
            return Err(self.target.rate_limited(message));
        }
        thread::sleep(wait.unwrap_or_else(|| backoff(failures)));
        Ok(())
    }

    /// Learns the challenge from a 401 and forgets the token it refused.
    fn reset_auth(&self, resp: &ureq::Response) {
        if let Some(c) = resp
            .all("www-authenticate")
            .into_iter()
            .find_map(parse_challenge)
        {
            *lock(&self.endpoint.challenge) = c;
        }
        lock(&self.endpoint.tokens).remove(&self.scope_key());
    }

    fn scope_key(&self) -> String {
        self.scopes.join(" ")
    }

    /// The `Authorization` value for this session, fetching a token if the
    /// registry wants one and none is cached for these scopes.
    fn authorization(&self) -> Result<Option<String>> {
        let challenge = lock(&self.endpoint.challenge).clone();
        match challenge {
            Challenge::None => Ok(None),
            Challenge::Basic => Ok(self
                .endpoint
                .credentials
                .as_ref()
                .map(Credentials::basic_header)),
            Challenge::Bearer { realm, service } => {
                let token = self.bearer_token(&realm, service.as_deref())?;
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    /// The cached token for this session's scopes, else a fresh one. One
    /// fetch at a time, so parallel blob transfers that all start without a
    /// token share the first one fetched.
    fn bearer_token(&self, realm: &str, service: Option<&str>) -> Result<String> {
        let key = self.scope_key();
        let cached = || lock(&self.endpoint.tokens).get(&key).cloned();
        if let Some(token) = cached() {
            return Ok(token);
        }
        let _fetching = lock(&self.endpoint.token_fetch);
        if let Some(token) = cached() {
            return Ok(token);
        }
        let token = fetch_token(&self.endpoint, &self.target, realm, service, &self.scopes)?;
        lock(&self.endpoint.tokens).insert(key.clone(), token.clone());
        Ok(token)
    }

    /// One HTTP exchange. The outer error is local (reading the body to
    /// send); the inner one is the network's.
    fn dispatch(
        &self,
        req: &Req<'_>,
        auth: Option<&str>,
    ) -> Result<std::result::Result<ureq::Response, ureq::Transport>> {
        let mut r = self.endpoint.agent.request(req.method, &req.url);
        for (name, value) in &req.headers {
            r = r.set(name, value);
        }
        if let Some(auth) = auth {
            r = r.set("Authorization", auth);
        }
        let sent = match req.body {
            Body::Empty if matches!(req.method, "GET" | "HEAD" | "DELETE") => r.call(),
            Body::Empty => r.send_bytes(&[]),
            Body::Bytes(bytes) => r.send_bytes(bytes),
            Body::Blob {
                content,
                digest,
                offset,
                len,
            } => {
                let reader = open_range(content, digest, offset, len, &self.target)?;
                r.set("Content-Length", &len.to_string()).send(reader)
            }
        };
        Ok(match sent {
            Ok(resp) | Err(ureq::Error::Status(_, resp)) => Ok(resp),
            Err(ureq::Error::Transport(t)) => Err(t),
        })
    }
}

/// `len` bytes of a stored blob from `offset`, for an upload body.
fn open_range(
    content: &ContentStore,
    digest: &Digest,
    offset: u64,
    len: u64,
    target: &Target,
) -> Result<impl Read> {
    let mut file = content.open_blob(digest).map_err(|e| target.content(e))?;
    file.seek(SeekFrom::Start(offset)).map_err(|e| {
        target.content(kiln_content::Error::Io {
            action: "seeking in",
            path: content.blob_path(digest),
            source: e,
        })
    })?;
    Ok(file.take(len))
}

/// Asks the token server for a token covering `scopes`: with an identity
/// (refresh) token by OAuth2 POST, else by GET with Basic credentials when
/// there are some (anonymous tokens otherwise).
pub(crate) fn fetch_token(
    endpoint: &Endpoint,
    target: &Target,
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
) -> Result<String> {
    let creds = endpoint.credentials.as_ref();
    let sent = match creds.and_then(Credentials::identity_token) {
        Some(refresh) => {
            let form = oauth_form(refresh, service, scopes);
            let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            endpoint.agent.post(realm).send_form(&pairs)
        }
        None => basic_token_request(endpoint, realm, service, scopes).call(),
    };
    let resp = match sent {
        Ok(resp) => resp,
        Err(ureq::Error::Status(status @ (401 | 403), resp)) => {
            return Err(target.denied(status, error_message(resp)));
        }
        Err(ureq::Error::Status(status, resp)) => {
            return Err(target.protocol(format!("token {realm}"), status, error_message(resp)));
        }
        Err(ureq::Error::Transport(t)) => {
            return Err(target.unreachable(format!("token server: {t}")));
        }
    };
    token_from_reply(resp, target)
}

fn basic_token_request(
    endpoint: &Endpoint,
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
) -> ureq::Request {
    let mut r = endpoint.agent.get(realm);
    if let Some(service) = service {
        r = r.query("service", service);
    }
    for scope in scopes {
        r = r.query("scope", scope);
    }
    if let Some(creds) = &endpoint.credentials {
        r = r.set("Authorization", &creds.basic_header());
    }
    r
}

/// Docker's refresh-token grant: scopes space-separated in one field.
fn oauth_form(
    refresh: &str,
    service: Option<&str>,
    scopes: &[String],
) -> Vec<(&'static str, String)> {
    let mut form = vec![
        ("grant_type", "refresh_token".to_string()),
        ("refresh_token", refresh.to_string()),
        ("client_id", "kiln".to_string()),
    ];
    if let Some(service) = service {
        form.push(("service", service.to_string()));
    }
    if !scopes.is_empty() {
        form.push(("scope", scopes.join(" ")));
    }
    form
}

/// `token` (Docker) or `access_token` (OAuth2) from a token reply.
fn token_from_reply(resp: ureq::Response, target: &Target) -> Result<String> {
    let reply: Value = serde_json::from_reader(resp.into_reader().take(MAX_ERROR_BODY))
        .map_err(|e| target.invalid(format!("token reply: {e}")))?;
    ["token", "access_token"]
        .iter()
        .find_map(|k| {
            reply
                .get(k)
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
        })
        .map(str::to_string)
        .ok_or_else(|| target.invalid("token reply has no token"))
}

/// `CODE: message` pairs from a registry's JSON error body, or its text.
pub(crate) fn error_message(resp: ureq::Response) -> String {
    let mut body = String::new();
    // A body that cannot be read just makes a shorter message.
    let _ = resp
        .into_reader()
        .take(MAX_ERROR_BODY)
        .read_to_string(&mut body);
    let parsed: Option<Value> = serde_json::from_str(&body).ok();
    let errors = parsed
        .as_ref()
        .and_then(|v| v.get("errors"))
        .and_then(Value::as_array);
    match errors {
        Some(list) => list
            .iter()
            .map(|e| {
                let field = |k| e.get(k).and_then(Value::as_str).unwrap_or("");
                format!("{}: {}", field("code"), field("message"))
            })
            .collect::<Vec<_>>()
            .join("; "),
        None => body.trim().chars().take(200).collect(),
    }
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(resp: &ureq::Response) -> Option<Duration> {
    let value = resp.header("retry-after")?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or_default())
}

/// 250 ms doubling per failure, at most 8 s.
pub(crate) fn backoff(failures: u32) -> Duration {
    Duration::from_millis(250u64 << failures.saturating_sub(1).min(5)).min(Duration::from_secs(8))
}

/// Locks a mutex, shrugging off poisoning: the guarded maps stay
/// consistent because every update is a single insert or remove.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenge_with_commas_in_scope() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="kiln""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(parse_challenge("Bearer service=x"), None);
    }

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(1), Duration::from_millis(250));
        assert_eq!(backoff(2), Duration::from_millis(500));
        assert_eq!(backoff(30), Duration::from_secs(8));
    }
}
