//! Test fixtures: a real `docker-registry` (plain, htpasswd, TLS), a tiny
//! scripted HTTP server for faults the real one never makes, and images
//! built from scratch into a temp content store.
#![allow(dead_code)] // each test binary uses a different subset

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use kiln_content::{ContentStore, Digest, sha256_digest};
use kiln_image::oci_spec::image::{Arch, Descriptor, MediaType, Os, PlatformBuilder};
use kiln_image::{
    ImageBuilder, LayerInfo, MediaFlavor, build_index, canonical_json, history_entry,
};
use kiln_registry::{AuthSource, Client, Platform, RegistryOptions};

/// Panics with an install hint when a tool the test needs is missing:
/// these tests must fail loudly, never skip.
pub fn require(tool: &str, package: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "`{tool}` is required by this test: apt-get install {package}"
    );
}

/// A free port on 127.0.0.1 (released for the caller to bind).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// How a test registry is set up.
pub enum Mode {
    Plain,
    Htpasswd {
        user: &'static str,
        password: &'static str,
    },
    /// TLS with a throwaway CA; with `client_certs`, mutual TLS.
    Tls {
        client_certs: bool,
    },
    /// Token auth: tokens from `realm`, signed by the cert in `bundle`.
    Token {
        realm: String,
        bundle: PathBuf,
    },
}

/// A running `docker-registry serve`, killed on drop.
pub struct Registry {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    /// For TLS: a `certs.d`-style directory trusting the test CA.
    pub certs_d: Option<PathBuf>,
}

impl Registry {
    pub fn start(mode: Mode) -> Self {
        require("docker-registry", "docker-registry");
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let (mut auth, mut tls) = (String::new(), String::new());
        let mut certs_d = None;
        match mode {
            Mode::Plain => {}
            Mode::Htpasswd { user, password } => {
                let file = write_htpasswd(dir.path(), user, password);
                auth.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: kiln-test\n    path: {}\n",
                    file.display()
                ));
            }
            Mode::Token { realm, bundle } => {
                auth.push_str(&format!(
                    "auth:\n  token:\n    realm: {realm}\n    service: kiln-test\n    \
                     issuer: kiln-test-issuer\n    rootcertbundle: {}\n",
                    bundle.display()
                ));
            }
            Mode::Tls { client_certs } => {
                let (cert, key, ca) = make_tls(dir.path());
                tls.push_str(&format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    cert.display(),
                    key.display()
                ));
                let host_dir = dir.path().join("certs.d").join(format!("127.0.0.1:{port}"));
                std::fs::create_dir_all(&host_dir).expect("certs.d");
                std::fs::copy(&ca, host_dir.join("ca.crt")).expect("copy ca");
                if client_certs {
                    tls.push_str(&format!("    clientcas:\n      - {}\n", ca.display()));
                    let ext = "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n";
                    let (key, crt) = signed_by_ca(dir.path(), "client", ext);
                    std::fs::copy(key, host_dir.join("client.key")).expect("copy key");
                    std::fs::copy(crt, host_dir.join("client.cert")).expect("copy cert");
                }
                certs_d = Some(dir.path().join("certs.d"));
            }
        }
        let config = registry_config(dir.path(), port, &auth, &tls);
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn docker-registry");
        let mut reg = Self {
            child,
            port,
            dir,
            certs_d,
        };
        reg.wait_ready();
        reg
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn reference(&self, repo_tag: &str) -> kiln_image::Reference {
        kiln_image::Reference::parse(&format!("{}/{repo_tag}", self.host())).expect("reference")
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(self.dir.path().join("registry.log"));
                panic!("docker-registry exited with {status}: {log:?}");
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "docker-registry did not listen on port {} in 15s",
            self.port
        );
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `http:` stays last so the TLS lines can go under it.
fn registry_config(dir: &Path, port: u16, auth: &str, tls: &str) -> PathBuf {
    let storage = dir.join("storage");
    let text = format!(
        "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
         storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
         {auth}http:\n  addr: 127.0.0.1:{port}\n  secret: kiln-test-secret\n{tls}",
        storage.display()
    );
    let path = dir.join("config.yml");
    std::fs::write(&path, text).expect("write registry config");
    path
}

/// A bcrypt htpasswd file made with apache2-utils' `htpasswd -Bbn`.
fn write_htpasswd(dir: &Path, user: &str, password: &str) -> PathBuf {
    require("htpasswd", "apache2-utils");
    let out = Command::new("htpasswd")
        .args(["-Bbn", user, password])
        .output()
        .expect("run htpasswd");
    assert!(out.status.success(), "htpasswd failed: {out:?}");
    let path = dir.join("htpasswd");
    std::fs::write(&path, out.stdout).expect("write htpasswd");
    path
}

/// A throwaway CA and a server certificate for 127.0.0.1 signed by it.
fn make_tls(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    self_signed(
        dir,
        "ca",
        &[
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    let ext =
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n";
    let (key, cert) = signed_by_ca(dir, "server", ext);
    (cert, key, dir.join("ca.crt"))
}

/// `NAME.key` and `NAME.crt` signed by `ca.key`, with extensions `ext`.
fn signed_by_ca(dir: &Path, name: &str, ext: &str) -> (PathBuf, PathBuf) {
    let (key, csr, crt, extfile) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.crt"),
        format!("{name}.ext"),
    );
    let subj = format!("/CN={name}");
    openssl(
        dir,
        &[
            "req", "-newkey", "rsa:2048", "-nodes", "-subj", &subj, "-keyout", &key, "-out", &csr,
        ],
    );
    std::fs::write(dir.join(&extfile), ext).expect("write ext");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &extfile,
            "-out",
            &crt,
        ],
    );
    (dir.join(key), dir.join(crt))
}

/// Runs `openssl ARGS` in `dir`, panicking with its output on failure.
pub fn openssl(dir: &Path, args: &[&str]) {
    require("openssl", "openssl");
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(out.status.success(), "openssl {args:?}: {out:?}");
}

/// A self-signed certificate `NAME.crt` with key `NAME.key` in `dir`.
pub fn self_signed(dir: &Path, name: &str, extra: &[&str]) -> (PathBuf, PathBuf) {
    let (key, crt, subj) = (
        format!("{name}.key"),
        format!("{name}.crt"),
        format!("/CN=kiln-{name}"),
    );
    let mut args = vec![
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", &subj, "-keyout",
        &key, "-out", &crt,
    ];
    args.extend_from_slice(extra);
    openssl(dir, &args);
    (dir.join(key), dir.join(crt))
}

/// Options for talking to test registries: anonymous, loopback insecure.
pub fn options(platform: &str) -> RegistryOptions {
    RegistryOptions {
        ca_dirs: Vec::new(),
        auth: AuthSource::anonymous(),
        platform: platform.parse::<Platform>().expect("platform"),
        ..RegistryOptions::default()
    }
}

pub fn client(platform: &str) -> Client {
    Client::new(options(platform))
}

pub fn store() -> (tempfile::TempDir, ContentStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ContentStore::open(dir.path().join("content")).expect("store");
    (dir, store)
}

/// An image built in a test: a one-file gzip layer, config, manifest.
#[derive(Debug, Clone)]
pub struct TestImage {
    pub manifest: Digest,
    pub manifest_descriptor: Descriptor,
    pub config: Digest,
    pub layer: Digest,
    pub layer_size: u64,
}

/// Deterministic, incompressible bytes so layer sizes are predictable.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Builds an image for `arch` whose layer holds `payload` bytes of noise.
pub fn build_image(
    store: &ContentStore,
    arch: &str,
    payload: usize,
    flavor: MediaFlavor,
) -> TestImage {
    let data = noise(payload, arch.len() as u64 + payload as u64);
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    tar.append_data(&mut header, "payload.bin", data.as_slice())
        .expect("tar append");
    let tar_bytes = tar.into_inner().expect("tar finish");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar_bytes).expect("gzip");
    let gz_bytes = gz.finish().expect("gzip finish");
    let layer = store.write_bytes(&gz_bytes).expect("store layer");
    let mut builder = ImageBuilder::scratch(Os::Linux, Arch::from(arch));
    builder.add_layer(
        LayerInfo {
            digest: layer.clone(),
            diff_id: sha256_digest(&tar_bytes),
            size: gz_bytes.len() as u64,
            media_type: MediaType::ImageLayerGzip,
        },
        history_entry("COPY payload.bin /", None, false),
    );
    let built = builder.build(flavor).expect("build image");
    let config = store
        .write_bytes(&built.config_bytes)
        .expect("store config");
    let manifest = store
        .write_bytes(&built.manifest_bytes)
        .expect("store manifest");
    TestImage {
        manifest,
        manifest_descriptor: built.manifest_descriptor,
        config,
        layer,
        layer_size: gz_bytes.len() as u64,
    }
}

/// Stores an OCI index over `images` (each given as `(image, os/arch[/variant])`).
pub fn build_index_blob(store: &ContentStore, images: &[(&TestImage, &str)]) -> Digest {
    build_index_flavored(store, images, MediaFlavor::Oci)
}

/// Stores an index (OCI) or manifest list (Docker) over `images`.
pub fn build_index_flavored(
    store: &ContentStore,
    images: &[(&TestImage, &str)],
    flavor: MediaFlavor,
) -> Digest {
    let descriptors = images
        .iter()
        .map(|(img, platform)| {
            let parts: Vec<&str> = platform.split('/').collect();
            let mut builder = PlatformBuilder::default()
                .os(Os::from(parts[0]))
                .architecture(Arch::from(parts[1]));
            if let Some(v) = parts.get(2) {
                builder = builder.variant(v.to_string());
            }
            let mut d = img.manifest_descriptor.clone();
            d.set_platform(Some(builder.build().expect("platform")));
            d
        })
        .collect();
    let index = build_index(descriptors, flavor).expect("index");
    store
        .write_bytes(&canonical_json(&index).expect("index json"))
        .expect("store index")
}

/// A request as the fake server saw it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The request re-serialised, asking the upstream to close afterwards.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("{} {} HTTP/1.1\r\n", self.method, self.path).into_bytes();
        for (k, v) in &self.headers {
            if !k.eq_ignore_ascii_case("connection") {
                out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
            }
        }
        out.extend_from_slice(b"Connection: close\r\n\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

/// What the fake server sends back: raw bytes, optionally cut short
/// (then the connection is closed mid-response).
pub struct Reply {
    pub bytes: Vec<u8>,
    pub cut_at: Option<usize>,
}

impl Reply {
    pub fn new(status: u16, headers: &[(&str, String)], body: &[u8], head: bool) -> Self {
        let mut out = format!("HTTP/1.1 {status} X\r\nConnection: close\r\n").into_bytes();
        for (k, v) in headers {
            out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        if !head {
            out.extend_from_slice(body);
        }
        Self {
            bytes: out,
            cut_at: None,
        }
    }

    pub fn json(status: u16, body: &str) -> Self {
        Self::new(
            status,
            &[("Content-Type", "application/json".into())],
            body.as_bytes(),
            false,
        )
    }
}

/// A scripted HTTP/1.1 server on 127.0.0.1: one request per connection.
pub struct FakeServer {
    pub port: u16,
}

impl FakeServer {
    pub fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Self {
        Self::start_with(|_| handler)
    }

    /// Like [`FakeServer::start`], for handlers that need their own port.
    pub fn start_with<H>(make: impl FnOnce(u16) -> H) -> Self
    where
        H: Fn(&Request) -> Reply + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake server");
        let port = listener.local_addr().expect("addr").port();
        let handler = Arc::new(make(port));
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let handler = handler.clone();
                thread::spawn(move || serve_one(stream, &*handler));
            }
        });
        Self { port }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

fn serve_one(mut stream: TcpStream, handler: &dyn Fn(&Request) -> Reply) {
    let Some(req) = read_request(&stream) else {
        return;
    };
    let reply = handler(&req);
    let end = reply
        .cut_at
        .unwrap_or(reply.bytes.len())
        .min(reply.bytes.len());
    let _ = stream.write_all(&reply.bytes[..end]);
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

fn read_request(stream: &TcpStream) -> Option<Request> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let len = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

/// Forwards `req` to `upstream` and returns its whole raw reply.
pub fn forward(req: &Request, upstream: u16) -> Vec<u8> {
    let mut conn = TcpStream::connect(("127.0.0.1", upstream)).expect("connect upstream");
    conn.write_all(&req.to_bytes()).expect("forward request");
    let mut out = Vec::new();
    conn.read_to_end(&mut out).expect("read upstream reply");
    out
}

/// Where a `Digest` lives in a registry URL.
pub fn blob_path(repo: &str, d: &Digest) -> String {
    format!("/v2/{repo}/blobs/{d}")
}
