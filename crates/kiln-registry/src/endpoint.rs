//! Finding a registry's API: Docker Hub's real host, HTTPS with the CAs from
//! `certs.d`, and the plain-HTTP fallback Docker allows for insecure hosts.

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::RegistryOptions;
use crate::auth::Credentials;
use crate::error::{Error, Result, Target};
use crate::transport::{Challenge, Endpoint, parse_challenge};

/// Where Docker Hub's registry API really lives.
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// Connects to `host`: pings `/v2/` over HTTPS, then (insecure hosts only)
/// over HTTP, and keeps the first that answers with its auth challenge.
pub(crate) fn connect(
    opts: &RegistryOptions,
    host: &str,
    target: &Target,
    credentials: Option<Credentials>,
) -> Result<Endpoint> {
    let api_host = api_host(host);
    let agent = agent(tls_config(opts, host)?);
    let schemes: &[&str] = if is_insecure(opts, host) {
        &["https", "http"]
    } else {
        &["https"]
    };
    let mut last_error = String::new();
    for scheme in schemes {
        let base = format!("{scheme}://{api_host}");
        match ping(&agent, &base) {
            Ok(challenge) => {
                tracing::debug!(%base, ?challenge, "registry endpoint");
                return Ok(Endpoint {
                    base,
                    agent,
                    challenge: Mutex::new(challenge),
                    credentials,
                    tokens: Mutex::new(HashMap::new()),
                    token_fetch: Mutex::new(()),
                });
            }
            Err(e) => last_error = format!("{base}: {e}"),
        }
    }
    Err(target.unreachable(last_error))
}

/// `docker.io` is an alias; its API is served elsewhere.
fn api_host(host: &str) -> &str {
    match host {
        "docker.io" | "index.docker.io" => DOCKER_HUB_API,
        other => other,
    }
}

/// `GET /v2/`: any HTTP answer means the API is there; 401 says how to log in.
fn ping(agent: &ureq::Agent, base: &str) -> std::result::Result<Challenge, String> {
    let resp = match agent.get(&format!("{base}/v2/")).call() {
        Ok(resp) | Err(ureq::Error::Status(_, resp)) => resp,
        Err(ureq::Error::Transport(t)) => return Err(t.to_string()),
    };
    if resp.status() != 401 {
        return Ok(Challenge::None);
    }
    Ok(resp
        .all("www-authenticate")
        .into_iter()
        .find_map(parse_challenge)
        .unwrap_or(Challenge::None))
}

/// Matches `host:port` or bare `host` against the insecure list.
fn is_insecure(opts: &RegistryOptions, host: &str) -> bool {
    let bare = host_without_port(host);
    opts.insecure.iter().any(|h| h == host || h == bare)
}

fn host_without_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

fn agent(tls: Arc<rustls::ClientConfig>) -> ureq::Agent {
    ureq::AgentBuilder::new()
        .tls_config(tls)
        .timeout_connect(Duration::from_secs(30))
        .timeout_read(Duration::from_secs(120))
        .timeout_write(Duration::from_secs(120))
        .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Public web roots plus every `*.crt` in `DIR/HOST/` of each CA dir.
fn tls_config(opts: &RegistryOptions, host: &str) -> Result<Arc<rustls::ClientConfig>> {
    let tls_err = |message: String| Error::Tls {
        registry: host.to_string(),
        message,
    };
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for dir in &opts.ca_dirs {
        for cert in host_certs(&dir.join(host)).map_err(&tls_err)? {
            roots.add(cert).map_err(|e| tls_err(e.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// CA certificates in one `certs.d/HOST` directory (none if it is absent).
fn host_certs(dir: &Path) -> std::result::Result<Vec<CertificateDer<'static>>, String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut certs = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "crt") {
            let found = CertificateDer::pem_file_iter(&path)
                .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| format!("{}: {e}", path.display()))?;
            certs.extend(found);
        }
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_maps_to_its_api_host() {
        assert_eq!(api_host("docker.io"), "registry-1.docker.io");
        assert_eq!(api_host("ghcr.io"), "ghcr.io");
    }

    #[test]
    fn insecure_matches_with_or_without_port() {
        let opts = RegistryOptions {
            insecure: vec!["localhost".into(), "reg.lan:5000".into()],
            ..RegistryOptions::default()
        };
        assert!(is_insecure(&opts, "localhost:5000"));
        assert!(is_insecure(&opts, "reg.lan:5000"));
        assert!(!is_insecure(&opts, "reg.lan:6000"));
        assert!(!is_insecure(&opts, "docker.io"));
        assert_eq!(host_without_port("[::1]:5000"), "::1");
    }
}
