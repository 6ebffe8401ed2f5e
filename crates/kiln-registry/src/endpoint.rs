//! Finding a registry's API: Docker Hub's real host, HTTPS with the CAs from
//! `certs.d`, and the plain-HTTP fallback Docker allows for insecure hosts.

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

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
    let verified = agent(tls_config(opts, host)?);
    // Docker's insecure registries: TLS without verification, else plain HTTP.
    let attempts = if is_insecure(opts, host) {
        vec![
            ("https", agent(skip_verify_config(opts, host)?)),
            ("http", verified),
        ]
    } else {
        vec![("https", verified)]
    };
    let mut last_error = String::new();
    for (scheme, agent) in attempts {
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

/// A client certificate chain and its key, for registries that want mutual TLS.
type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

fn tls_err(host: &str, message: impl std::fmt::Display) -> Error {
    Error::Tls {
        registry: host.to_string(),
        message: message.to_string(),
    }
}

/// Public web roots, the system's trust store (as docker trusts it: a site's own CA, or the
/// CA of a re-signing proxy, lives there), plus every `*.crt` in `DIR/HOST/` of each CA dir,
/// and the first `NAME.cert`/`NAME.key` pair there as client identity.
fn tls_config(opts: &RegistryOptions, host: &str) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    // An unreadable system store leaves the web roots: registries with public certificates work.
    if let Ok(system) = rustls_native_certs::load_native_certs() {
        roots.add_parsable_certificates(system);
    }
    for dir in &opts.ca_dirs {
        for cert in host_certs(&dir.join(host)).map_err(|e| tls_err(host, e))? {
            roots.add(cert).map_err(|e| tls_err(host, e))?;
        }
    }
    let builder = config_builder(host)?.with_root_certificates(roots);
    with_identity(builder, client_identity(opts, host)?, host)
}

/// TLS that accepts any certificate, for registries the user marked insecure.
fn skip_verify_config(opts: &RegistryOptions, host: &str) -> Result<Arc<rustls::ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = config_builder(host)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(SkipVerify(provider)));
    with_identity(builder, client_identity(opts, host)?, host)
}

fn config_builder(
    host: &str,
) -> Result<rustls::ConfigBuilder<rustls::ClientConfig, rustls::WantsVerifier>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(host, e))
}

fn with_identity(
    builder: rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert>,
    identity: Option<Identity>,
    host: &str,
) -> Result<Arc<rustls::ClientConfig>> {
    let config = match identity {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| tls_err(host, e))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The first `NAME.cert` with a matching `NAME.key` in a `certs.d/HOST` dir.
fn client_identity(opts: &RegistryOptions, host: &str) -> Result<Option<Identity>> {
    for dir in &opts.ca_dirs {
        let Ok(entries) = fs::read_dir(dir.join(host)) else {
            continue;
        };
        for path in entries.flatten().map(|e| e.path()) {
            let key_path = path.with_extension("key");
            if path.extension().is_none_or(|e| e != "cert") || !key_path.is_file() {
                continue;
            }
            let chain = CertificateDer::pem_file_iter(&path)
                .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| tls_err(host, format!("{}: {e}", path.display())))?;
            let key = PrivateKeyDer::from_pem_file(&key_path)
                .map_err(|e| tls_err(host, format!("{}: {e}", key_path.display())))?;
            return Ok(Some((chain, key)));
        }
    }
    Ok(None)
}

/// Accepts any server certificate but still checks handshake signatures,
/// so the connection is at least bound to the key the server presented.
#[derive(Debug)]
struct SkipVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for SkipVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
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
