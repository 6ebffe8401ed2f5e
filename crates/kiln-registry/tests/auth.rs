//! Authentication and transport security: htpasswd Basic auth and TLS on a
//! real registry, Bearer tokens from a scripted token server, login/logout
//! and credential helpers.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::{FakeServer, Mode, Registry, Reply, build_image, options, store};
use kiln_image::{MediaFlavor, Reference};
use kiln_registry::{AuthSource, Client, Error, RegistryOptions};

fn with_auth(auth: AuthSource) -> Client {
    Client::new(RegistryOptions {
        auth,
        ..options("linux/amd64")
    })
}

#[test]
fn htpasswd_registry_denies_anonymous_and_accepts_logged_in_clients() {
    let registry = Registry::start(Mode::Htpasswd {
        user: "kiln",
        password: "s3cret",
    });
    let (_src_dir, src) = store();
    let image = build_image(&src, "amd64", 2_000, MediaFlavor::Oci);
    let reference = registry.reference("kiln/private:v1");

    let err = with_auth(AuthSource::anonymous())
        .push(&src, &image.manifest, &reference)
        .unwrap_err();
    assert!(matches!(err, Error::Denied { status: 401, .. }), "{err}");
    assert!(err.to_string().contains("kiln/private:v1"), "{err}");

    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("config.json");
    let c = with_auth(AuthSource::docker_config(&config));
    let err = c.login(&registry.host(), "kiln", "wrong").unwrap_err();
    assert!(matches!(err, Error::Denied { .. }), "{err}");
    assert!(!config.exists(), "failed login wrote credentials");

    c.login(&registry.host(), "kiln", "s3cret").unwrap();
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    // base64("kiln:s3cret")
    assert_eq!(
        written["auths"][registry.host()]["auth"],
        "a2lsbjpzM2NyZXQ="
    );

    // A fresh client reads the saved credentials.
    let c = with_auth(AuthSource::docker_config(&config));
    c.push(&src, &image.manifest, &reference).unwrap();
    let (_dst_dir, dst) = store();
    assert_eq!(
        c.pull(&dst, &reference).unwrap().manifest_digest,
        image.manifest
    );

    assert!(c.logout(&registry.host()).unwrap());
    let (_dir, dst) = store();
    let err = with_auth(AuthSource::docker_config(&config))
        .pull(&dst, &reference)
        .unwrap_err();
    assert!(matches!(err, Error::Denied { .. }), "{err}");
}

#[test]
fn tls_registry_is_trusted_through_certs_d_skipped_when_insecure_refused_otherwise() {
    let registry = Registry::start(Mode::Tls {
        client_certs: false,
    });
    let (_src_dir, src) = store();
    let image = build_image(&src, "amd64", 2_000, MediaFlavor::Oci);
    let reference = registry.reference("kiln/tls:v1");
    let certs_d = registry.certs_d.clone().unwrap();
    // Not insecure: HTTPS must verify, with no plain-HTTP fallback.
    let trusted = Client::new(RegistryOptions {
        insecure: Vec::new(),
        ca_dirs: vec![certs_d],
        ..options("linux/amd64")
    });
    trusted.push(&src, &image.manifest, &reference).unwrap();
    let (_dst_dir, dst) = store();
    assert_eq!(
        trusted.pull(&dst, &reference).unwrap().manifest_digest,
        image.manifest
    );

    // Loopback is insecure by default: TLS without verification, as Docker.
    let (_dir, dst) = store();
    let insecure = Client::new(options("linux/amd64"));
    assert_eq!(
        insecure.pull(&dst, &reference).unwrap().manifest_digest,
        image.manifest
    );

    let untrusted = Client::new(RegistryOptions {
        insecure: Vec::new(),
        ..options("linux/amd64")
    });
    let (_dir, dst) = store();
    let err = untrusted.pull(&dst, &reference).unwrap_err();
    assert!(matches!(err, Error::Unreachable { .. }), "{err}");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
}

/// A scripted registry that wants Bearer tokens from its own `/token`
/// realm; the token server checks Basic credentials and the scope.
struct TokenRegistry {
    server: FakeServer,
    token_requests: Arc<Mutex<Vec<String>>>,
    registry_hits: Arc<AtomicUsize>,
}

fn token_registry(files: Vec<(String, String, Vec<u8>)>) -> TokenRegistry {
    let token_requests = Arc::new(Mutex::new(Vec::new()));
    let registry_hits = Arc::new(AtomicUsize::new(0));
    let (tokens, hits) = (token_requests.clone(), registry_hits.clone());
    let server = FakeServer::start_with(move |port| {
        let realm = format!("http://127.0.0.1:{port}/token");
        move |req: &common::Request| {
            if req.path.starts_with("/token") {
                tokens.lock().unwrap().push(req.path.clone());
                if req.method == "POST" {
                    let form = String::from_utf8_lossy(&req.body).into_owned();
                    if form.contains("grant_type=refresh_token")
                        && form.contains("refresh_token=kiln-identity")
                        && form.contains("scope=repository%3Akiln%2Ftok%3Apull")
                    {
                        return Reply::json(200, r#"{"access_token":"good-token"}"#);
                    }
                    return Reply::json(401, r#"{"details":"bad refresh token"}"#);
                }
                // base64("kiln:tok-pass")
                if req.header("authorization") != Some("Basic a2lsbjp0b2stcGFzcw==") {
                    return Reply::json(401, r#"{"details":"bad credentials"}"#);
                }
                return Reply::json(200, r#"{"token":"good-token","expires_in":300}"#);
            }
            hits.fetch_add(1, Ordering::SeqCst);
            if req.header("authorization") != Some("Bearer good-token") {
                let challenge = format!(
                    r#"Bearer realm="{realm}",service="fake-registry",scope="repository:kiln/tok:pull""#
                );
                return Reply::new(401, &[("WWW-Authenticate", challenge)], b"{}", false);
            }
            match files.iter().find(|(path, _, _)| *path == req.path) {
                Some((_, ctype, body)) => {
                    Reply::new(200, &[("Content-Type", ctype.clone())], body, false)
                }
                None if req.path == "/v2/" => Reply::json(200, "{}"),
                None => Reply::json(404, "{}"),
            }
        }
    });
    TokenRegistry {
        server,
        token_requests,
        registry_hits,
    }
}

/// The fake registry's files for `image` as `kiln/tok:v1`.
fn tok_files(
    src: &kiln_content::ContentStore,
    image: &common::TestImage,
) -> Vec<(String, String, Vec<u8>)> {
    let read = |d| src.read_bytes(d, 1 << 20).unwrap();
    vec![
        (
            "/v2/kiln/tok/manifests/v1".to_string(),
            "application/vnd.oci.image.manifest.v1+json".to_string(),
            read(&image.manifest),
        ),
        (
            format!("/v2/kiln/tok/blobs/{}", image.config),
            "application/octet-stream".into(),
            read(&image.config),
        ),
        (
            format!("/v2/kiln/tok/blobs/{}", image.layer),
            "application/octet-stream".into(),
            read(&image.layer),
        ),
    ]
}

#[test]
fn bearer_token_flow_fetches_one_token_per_scope_with_credentials() {
    let (_src_dir, src) = store();
    let image = build_image(&src, "amd64", 3_000, MediaFlavor::Oci);
    let fake = token_registry(tok_files(&src, &image));
    let host = fake.server.host();
    let reference = Reference::parse(&format!("{host}/kiln/tok:v1")).unwrap();
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("config.json");

    let (_dir, dst) = store();
    let err = with_auth(AuthSource::docker_config(&config))
        .pull(&dst, &reference)
        .unwrap_err();
    assert!(matches!(err, Error::Denied { .. }), "{err}");

    let c = with_auth(AuthSource::docker_config(&config));
    assert!(c.login(&host, "kiln", "nope").is_err());
    c.login(&host, "kiln", "tok-pass").unwrap();
    fake.token_requests.lock().unwrap().clear();

    let c = with_auth(AuthSource::docker_config(&config));
    let pulled = c.pull(&dst, &reference).unwrap();
    assert_eq!(pulled.manifest_digest, image.manifest);
    let tokens = fake.token_requests.lock().unwrap().clone();
    assert_eq!(tokens.len(), 1, "token cached per scope: {tokens:?}");
    assert!(tokens[0].contains("service=fake-registry"), "{tokens:?}");
    assert!(
        tokens[0].contains("scope=repository%3Akiln%2Ftok%3Apull"),
        "{tokens:?}"
    );
    assert!(fake.registry_hits.load(Ordering::SeqCst) >= 3);
}

#[test]
fn credential_helpers_supply_and_store_credentials() {
    let registry = Registry::start(Mode::Htpasswd {
        user: "helper-user",
        password: "helper-pass",
    });
    let dir = tempfile::tempdir().unwrap();
    let store_file = dir.path().join("helper-store.json");
    let helper = dir.path().join("docker-credential-kilntest");
    // A file-backed helper speaking the credential-helper protocol.
    let script = format!(
        "#!/bin/sh\nset -e\ncase \"$1\" in\n\
         get) read url || true; if [ -f {store} ]; then cat {store}; else echo 'credentials not found in native keychain'; exit 1; fi ;;\n\
         store) cat > {store} ;;\n\
         erase) rm -f {store} ;;\n\
         esac\n",
        store = store_file.display()
    );
    std::fs::write(&helper, script).unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&helper)
        .status()
        .unwrap();
    let config = dir.path().join("config.json");
    std::fs::write(
        &config,
        format!(r#"{{"credHelpers":{{"{}":"kilntest"}}}}"#, registry.host()),
    )
    .unwrap();
    let auth = || AuthSource::docker_config(&config).with_helper_dir(dir.path());

    let (_src_dir, src) = store();
    let image = build_image(&src, "amd64", 2_000, MediaFlavor::Oci);
    let reference = registry.reference("kiln/helped:v1");
    let err = with_auth(auth())
        .push(&src, &image.manifest, &reference)
        .unwrap_err();
    assert!(matches!(err, Error::Denied { .. }), "{err}");

    with_auth(auth())
        .login(&registry.host(), "helper-user", "helper-pass")
        .unwrap();
    let saved = std::fs::read_to_string(&store_file).unwrap();
    assert!(saved.contains("\"Secret\":\"helper-pass\""), "{saved}");
    assert!(
        !std::fs::read_to_string(&config)
            .unwrap()
            .contains("helper-pass")
    );

    with_auth(auth())
        .push(&src, &image.manifest, &reference)
        .unwrap();
    assert!(with_auth(auth()).logout(&registry.host()).unwrap());
    assert!(!store_file.exists());
}

#[test]
fn identity_tokens_are_exchanged_by_oauth_refresh_grant() {
    let (_src_dir, src) = store();
    let image = build_image(&src, "amd64", 3_000, MediaFlavor::Oci);
    let fake = token_registry(tok_files(&src, &image));
    let host = fake.server.host();
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("config.json");
    let entry = serde_json::json!({"auths": {host.clone(): {"identitytoken": "kiln-identity"}}});
    std::fs::write(&config, entry.to_string()).unwrap();

    let (_dir, dst) = store();
    let reference = Reference::parse(&format!("{host}/kiln/tok:v1")).unwrap();
    let pulled = with_auth(AuthSource::docker_config(&config))
        .pull(&dst, &reference)
        .unwrap();
    assert_eq!(pulled.manifest_digest, image.manifest);
    assert_eq!(fake.token_requests.lock().unwrap().len(), 1);
}

#[test]
fn mutual_tls_presents_the_client_certificate_from_certs_d() {
    let registry = Registry::start(Mode::Tls { client_certs: true });
    let (_src_dir, src) = store();
    let image = build_image(&src, "amd64", 2_000, MediaFlavor::Oci);
    let reference = registry.reference("kiln/mtls:v1");
    let certs_d = registry.certs_d.clone().unwrap();
    let with_cert = Client::new(RegistryOptions {
        insecure: Vec::new(),
        ca_dirs: vec![certs_d.clone()],
        ..options("linux/amd64")
    });
    with_cert.push(&src, &image.manifest, &reference).unwrap();

    // The same CA but no client certificate: the handshake is refused.
    let host_dir = certs_d.join(registry.host());
    let bare = tempfile::tempdir().unwrap();
    let bare_host = bare.path().join(registry.host());
    std::fs::create_dir_all(&bare_host).unwrap();
    std::fs::copy(host_dir.join("ca.crt"), bare_host.join("ca.crt")).unwrap();
    let without = Client::new(RegistryOptions {
        insecure: Vec::new(),
        ca_dirs: vec![bare.path().to_path_buf()],
        ..options("linux/amd64")
    });
    let (_dir, dst) = store();
    let err = without.pull(&dst, &reference).unwrap_err();
    assert!(matches!(err, Error::Unreachable { .. }), "{err}");
}
