//! Credentials from Docker's `config.json` (`auths`, `credsStore`,
//! `credHelpers`) and `docker-credential-*` helpers, so a `docker login`
//! done earlier also works for kiln, and `kiln login` for docker.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Key Docker uses in `config.json` for Docker Hub.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// A username and password (or token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <redacted>)", self.username)
    }
}

/// Username Docker uses to mark the secret as an identity (refresh) token.
const IDENTITY_TOKEN_USER: &str = "<token>";

impl Credentials {
    /// `Authorization: Basic ...` value.
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!("Basic {}", BASE64.encode(raw))
    }

    /// The identity token, if these credentials are one (`identitytoken` in
    /// `config.json`, or a helper's `<token>` user).
    pub fn identity_token(&self) -> Option<&str> {
        (self.username == IDENTITY_TOKEN_USER).then_some(self.password.as_str())
    }
}

/// Where credentials come from: nowhere (anonymous), or a Docker config file.
#[derive(Debug, Clone, Default)]
pub struct AuthSource {
    config: Option<PathBuf>,
    helper_dir: Option<PathBuf>,
}

impl AuthSource {
    /// Always anonymous; `login` fails because there is nowhere to store.
    pub fn anonymous() -> Self {
        Self::default()
    }

    /// Reads and writes the given Docker `config.json`.
    pub fn docker_config(path: impl Into<PathBuf>) -> Self {
        Self {
            config: Some(path.into()),
            helper_dir: None,
        }
    }

    /// Docker's own lookup: `$DOCKER_CONFIG/config.json`, else
    /// `~/.docker/config.json`; anonymous when neither can be located.
    pub fn from_env() -> Self {
        let dir = std::env::var_os("DOCKER_CONFIG")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".docker")));
        match dir {
            Some(dir) => Self::docker_config(dir.join("config.json")),
            None => Self::anonymous(),
        }
    }

    /// Looks for `docker-credential-*` helpers in `dir` before `$PATH`, for
    /// installs that ship their helpers beside the binary (and for tests).
    pub fn with_helper_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.helper_dir = Some(dir.into());
        self
    }

    /// The config file in use, if any.
    pub fn config_path(&self) -> Option<&Path> {
        self.config.as_deref()
    }

    /// Credentials for `host`, from its helper, the global store or `auths`.
    pub(crate) fn lookup(&self, host: &str) -> Result<Option<Credentials>> {
        let Some(path) = &self.config else {
            return Ok(None);
        };
        let config = read_config(path, host)?;
        if let Some(helper) = helper_for(&config, host) {
            return self.helper_get(&helper, host);
        }
        auths_entry(&config, host)
            .and_then(|e| decode_entry(e, host).transpose())
            .transpose()
    }

    /// Saves credentials the way `docker login` would.
    pub(crate) fn store(&self, host: &str, creds: &Credentials) -> Result<()> {
        let path = self.require_config(host)?;
        let mut config = read_config(path, host)?;
        if let Some(helper) = helper_for(&config, host) {
            let payload = serde_json::json!({
                "ServerURL": server_key(host),
                "Username": creds.username,
                "Secret": creds.password,
            });
            self.run_helper(&helper, "store", &payload.to_string(), host)?;
            return Ok(());
        }
        let raw = format!("{}:{}", creds.username, creds.password);
        let entry = serde_json::json!({ "auth": BASE64.encode(raw) });
        let auths = object_field(&mut config, "auths");
        auths.retain(|k, _| normalize_key(k) != host_key(host));
        auths.insert(server_key(host), entry);
        write_config(path, &config, host)
    }

    /// Forgets credentials for `host`; true if there were any.
    pub(crate) fn erase(&self, host: &str) -> Result<bool> {
        let path = self.require_config(host)?;
        let mut config = read_config(path, host)?;
        if let Some(helper) = helper_for(&config, host) {
            self.run_helper(&helper, "erase", &server_key(host), host)?;
            return Ok(true);
        }
        let auths = object_field(&mut config, "auths");
        let before = auths.len();
        auths.retain(|k, _| normalize_key(k) != host_key(host));
        let removed = auths.len() != before;
        if removed {
            write_config(path, &config, host)?;
        }
        Ok(removed)
    }

    fn require_config(&self, host: &str) -> Result<&Path> {
        self.config.as_deref().ok_or_else(|| Error::Credentials {
            registry: host.to_string(),
            message: "no Docker config file to store credentials in".into(),
        })
    }

    /// `docker-credential-NAME get`: server URL on stdin, JSON on stdout.
    fn helper_get(&self, helper: &str, host: &str) -> Result<Option<Credentials>> {
        let out = match self.run_helper(helper, "get", &server_key(host), host) {
            Ok(out) => out,
            Err(Error::Credentials { message, .. }) if message.contains("not found") => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let reply: Value = serde_json::from_str(&out).map_err(|e| cred_err(host, e))?;
        let field = |k: &str| {
            reply
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let (username, password) = (field("Username"), field("Secret"));
        if username.is_empty() && password.is_empty() {
            return Ok(None);
        }
        Ok(Some(Credentials { username, password }))
    }

    fn run_helper(&self, helper: &str, action: &str, input: &str, host: &str) -> Result<String> {
        let program = self.helper_program(helper);
        let mut child = Command::new(&program)
            .arg(action)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| cred_err(host, format!("running {}: {e}", program.display())))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A helper may exit without reading its input (an `erase` that
            // has nothing to do); its exit status tells whether it worked.
            match stdin.write_all(input.as_bytes()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    return Err(cred_err(host, e));
                }
                _ => {}
            }
        }
        let out = child.wait_with_output().map_err(|e| cred_err(host, e))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            return Ok(stdout);
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let message = format!(
            "{} {action}: {} {}",
            program.display(),
            stdout.trim(),
            stderr.trim()
        );
        Err(cred_err(host, message))
    }

    fn helper_program(&self, helper: &str) -> PathBuf {
        let name = format!("docker-credential-{helper}");
        match &self.helper_dir {
            Some(dir) if dir.join(&name).is_file() => dir.join(name),
            _ => PathBuf::from(name),
        }
    }
}

fn cred_err(host: &str, e: impl std::fmt::Display) -> Error {
    Error::Credentials {
        registry: host.to_string(),
        message: e.to_string(),
    }
}

/// The key `docker login` writes for `host`.
fn server_key(host: &str) -> String {
    if host_key(host) == "docker.io" {
        DOCKER_HUB_KEY.to_string()
    } else {
        host.to_string()
    }
}

/// Docker Hub's several spellings collapse to `docker.io`.
fn host_key(host: &str) -> String {
    match host {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io".into(),
        other => other.to_string(),
    }
}

/// `https://host/v1/` → host key, as Docker's `ConvertToHostname`; an
/// empty name means Docker Hub, as for `docker login`.
pub(crate) fn normalize_key(key: &str) -> String {
    if key.is_empty() {
        return "docker.io".into();
    }
    let bare = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    host_key(bare.split('/').next().unwrap_or(bare))
}

fn read_config(path: &Path, host: &str) -> Result<Value> {
    match fs::read(path) {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(Value::Object(Map::new())),
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| cred_err(host, format!("parsing {}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Value::Object(Map::new())),
        Err(e) => Err(cred_err(host, format!("reading {}: {e}", path.display()))),
    }
}

/// Writes atomically with mode 0600: the file holds secrets.
fn write_config(path: &Path, config: &Value, host: &str) -> Result<()> {
    let err = |e: std::io::Error| cred_err(host, format!("writing {}: {e}", path.display()));
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(err)?;
    let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(err)?;
    let bytes = serde_json::to_vec_pretty(config).map_err(|e| cred_err(host, e))?;
    temp.write_all(&bytes).map_err(err)?;
    temp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

/// `config[name]` as an object, created (or replaced if not an object).
fn object_field<'a>(config: &'a mut Value, name: &str) -> &'a mut Map<String, Value> {
    if !config.is_object() {
        *config = Value::Object(Map::new());
    }
    let Value::Object(root) = config else {
        unreachable!("config was just made an object")
    };
    let slot = root
        .entry(name.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    match slot {
        Value::Object(map) => map,
        _ => unreachable!("slot was just made an object"),
    }
}

/// `credHelpers[host]`, else `credsStore`.
fn helper_for(config: &Value, host: &str) -> Option<String> {
    let per_host = config
        .get("credHelpers")
        .and_then(Value::as_object)
        .and_then(|m| m.iter().find(|(k, _)| normalize_key(k) == host_key(host)))
        .and_then(|(_, v)| v.as_str());
    let global = config.get("credsStore").and_then(Value::as_str);
    per_host
        .or(global)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn auths_entry<'a>(config: &'a Value, host: &str) -> Option<&'a Value> {
    config
        .get("auths")?
        .as_object()?
        .iter()
        .find(|(k, _)| normalize_key(k) == host_key(host))
        .map(|(_, v)| v)
}

/// An `auths` entry: `identitytoken`, base64 `auth`, or plain
/// `username`/`password`.
fn decode_entry(entry: &Value, host: &str) -> Result<Option<Credentials>> {
    let field = |k: &str| entry.get(k).and_then(Value::as_str).unwrap_or("");
    if !field("identitytoken").is_empty() {
        return Ok(Some(Credentials {
            username: IDENTITY_TOKEN_USER.into(),
            password: field("identitytoken").into(),
        }));
    }
    if let Some(auth) = entry
        .get("auth")
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty())
    {
        let raw = BASE64
            .decode(auth.trim())
            .map_err(|e| cred_err(host, format!("bad base64 in auths entry: {e}")))?;
        let raw = String::from_utf8(raw).map_err(|e| cred_err(host, e))?;
        let (username, password) = raw
            .split_once(':')
            .ok_or_else(|| cred_err(host, "auths entry lacks a ':'"))?;
        return Ok(Some(Credentials {
            username: username.into(),
            password: password.into(),
        }));
    }
    if field("username").is_empty() {
        return Ok(None);
    }
    Ok(Some(Credentials {
        username: field("username").into(),
        password: field("password").into(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_normalise_like_docker() {
        assert_eq!(normalize_key("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(normalize_key("http://localhost:5000/v2/"), "localhost:5000");
        assert_eq!(normalize_key(""), "docker.io");
        assert_eq!(server_key("docker.io"), DOCKER_HUB_KEY);
        assert_eq!(server_key("127.0.0.1:5000"), "127.0.0.1:5000");
    }

    #[test]
    fn store_lookup_erase_roundtrip_keeps_other_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        fs::write(&path, r#"{"auths":{},"detachKeys":"ctrl-q"}"#).unwrap();
        let source = AuthSource::docker_config(&path);
        let creds = Credentials {
            username: "u".into(),
            password: "p:w".into(),
        };
        source.store("docker.io", &creds).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("https://index.docker.io/v1/"), "{text}");
        assert!(text.contains("dTpwOnc="), "{text}");
        assert!(text.contains("detachKeys"), "{text}");
        assert_eq!(source.lookup("registry-1.docker.io").unwrap(), Some(creds));
        assert!(source.erase("docker.io").unwrap());
        assert_eq!(source.lookup("docker.io").unwrap(), None);
        assert!(!source.erase("docker.io").unwrap());
    }

    #[test]
    fn plain_username_password_entries_work() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        fs::write(
            &path,
            r#"{"auths":{"https://r.example/v2/":{"username":"a","password":"b"}}}"#,
        )
        .unwrap();
        let found = AuthSource::docker_config(&path)
            .lookup("r.example")
            .unwrap();
        assert_eq!(found.map(|c| c.password), Some("b".into()));
    }

    #[test]
    fn garbage_config_is_a_named_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        fs::write(&path, "{nope").unwrap();
        let err = AuthSource::docker_config(&path)
            .lookup("r.example")
            .unwrap_err();
        assert!(err.to_string().contains("r.example"), "{err}");
    }
}
