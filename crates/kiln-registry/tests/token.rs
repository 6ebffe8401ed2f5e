//! A real registry configured for token auth, with a tiny token server in
//! the test that signs RS256 JWTs (via `openssl dgst`) for the scopes asked.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::{FakeServer, Mode, Registry, Reply, Request, build_image, options, store};
use kiln_image::MediaFlavor;
use kiln_registry::{AuthSource, Client, Error, RegistryOptions};

/// base64("kiln:tok-pass")
const GOOD_BASIC: &str = "Basic a2lsbjp0b2stcGFzcw==";

/// A signing key and its self-signed certificate (the registry's root bundle).
fn signing_cert(dir: &Path) -> (PathBuf, PathBuf) {
    common::self_signed(dir, "token-signer", &[])
}

fn cert_der_base64(cert: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-outform", "DER", "-in"])
        .arg(cert)
        .output()
        .expect("openssl x509");
    assert!(out.status.success());
    STANDARD.encode(out.stdout)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// `scope` query values of a token request.
fn scopes(req: &Request) -> Vec<String> {
    let query = req.path.split_once('?').map(|(_, q)| q).unwrap_or("");
    query
        .split('&')
        .filter_map(|kv| kv.strip_prefix("scope="))
        .map(percent_decode)
        .collect()
}

/// An RS256 JWT granting exactly `scopes`, with the signer in `x5c`.
fn sign_token(key: &Path, x5c: &str, scopes: &[String]) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let access: Vec<serde_json::Value> = scopes
        .iter()
        .filter_map(|s| {
            let mut parts = s.splitn(3, ':');
            let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
            Some(serde_json::json!({
                "type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()
            }))
        })
        .collect();
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "x5c": [x5c]});
    let claims = serde_json::json!({
        "iss": "kiln-test-issuer", "sub": "kiln", "aud": "kiln-test",
        "exp": now + 300, "nbf": now - 10, "iat": now - 10, "jti": format!("t{now}"),
        "access": access,
    });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl dgst");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "signing failed");
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(out.stdout))
}

/// Token server: Basic credentials required; records the scopes asked for.
fn token_server(key: PathBuf, x5c: String) -> (FakeServer, Arc<Mutex<Vec<Vec<String>>>>) {
    let asked = Arc::new(Mutex::new(Vec::new()));
    let asked2 = asked.clone();
    let server = FakeServer::start(move |req| {
        if req.header("authorization") != Some(GOOD_BASIC) {
            return Reply::json(401, r#"{"details":"bad credentials"}"#);
        }
        let scopes = scopes(req);
        asked2.lock().unwrap().push(scopes.clone());
        let token = sign_token(&key, &x5c, &scopes);
        Reply::json(200, &serde_json::json!({ "token": token }).to_string())
    });
    (server, asked)
}

#[test]
fn token_auth_registry_push_pull_and_login() {
    let keys = tempfile::tempdir().unwrap();
    let (key, cert) = signing_cert(keys.path());
    let x5c = cert_der_base64(&cert);
    let (tokens, asked) = token_server(key, x5c);
    let registry = Registry::start(Mode::Token {
        realm: format!("http://{}/token", tokens.host()),
        bundle: cert,
    });
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("config.json");
    let c = || {
        Client::new(RegistryOptions {
            auth: AuthSource::docker_config(&config),
            ..options("linux/amd64")
        })
    };
    let (_src_dir, src) = store();
    let image = build_image(&src, "amd64", 30_000, MediaFlavor::Oci);
    let reference = registry.reference("kiln/tokened:v1");

    let err = c().push(&src, &image.manifest, &reference).unwrap_err();
    assert!(matches!(err, Error::Denied { .. }), "{err}");
    assert!(matches!(
        c().login(&registry.host(), "kiln", "wrong").unwrap_err(),
        Error::Denied { .. }
    ));
    c().login(&registry.host(), "kiln", "tok-pass").unwrap();

    asked.lock().unwrap().clear();
    let client = c();
    client.push(&src, &image.manifest, &reference).unwrap();
    let pushes = asked.lock().unwrap().clone();
    assert_eq!(
        pushes,
        vec![vec!["repository:kiln/tokened:pull,push".to_string()]]
    );

    let (_dst_dir, dst) = store();
    let pulled = c().pull(&dst, &reference).unwrap();
    assert_eq!(pulled.manifest_digest, image.manifest);
    dst.verify(&image.layer).unwrap();

    // Mounting into another repository needs a token for both scopes.
    client
        .push(&src, &image.manifest, &registry.reference("kiln/copy:v1"))
        .unwrap();
    let last = asked.lock().unwrap().last().cloned().unwrap();
    assert!(
        last.contains(&"repository:kiln/tokened:pull".to_string()),
        "{last:?}"
    );
}
