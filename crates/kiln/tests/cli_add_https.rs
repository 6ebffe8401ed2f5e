//! `ADD https://…` trusts what the system trusts, as docker does: here a test CA given through
//! `SSL_CERT_FILE` (the way a site CA or a re-signing proxy's CA reaches the system store).

mod cli_store_util;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use cli_store_util::{Kiln, require, sh};

/// A CA and a server certificate for 127.0.0.1 signed by it, in `dir`.
fn certificates(dir: &Path) {
    require("openssl");
    sh(&format!(
        "cd '{}'
         openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=kiln-test-ca \
           -keyout ca.key -out ca.crt -addext basicConstraints=critical,CA:TRUE \
           -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
         openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout srv.key -out srv.csr 2>/dev/null
         printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n' > srv.ext
         openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
           -extfile srv.ext -out srv.crt 2>/dev/null",
        dir.display()
    ));
}

/// An HTTPS file server on 127.0.0.1 serving `root`; killed on drop.
struct Server(Child, u16);

impl Server {
    fn start(root: &Path, certs: &Path) -> Self {
        const SCRIPT: &str = "import http.server, ssl, functools, sys
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
server = http.server.HTTPServer(('127.0.0.1', 0), handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2] + '/srv.crt', sys.argv[2] + '/srv.key')
server.socket = ctx.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()";
        let mut child = Command::new(require("python3"))
            .args(["-c", SCRIPT])
            .arg(root)
            .arg(certs)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting the HTTPS server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("the server's port");
        Self(child, port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn add_https_trusts_the_system_store_and_nothing_else() {
    let kiln = Kiln::new();
    kiln.import_busybox("lab/busybox:1");
    let certs = kiln.path().join("certs");
    let served = kiln.path().join("served");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::create_dir_all(&served).unwrap();
    certificates(&certs);
    std::fs::write(served.join("payload.txt"), "fetched over https\n").unwrap();
    let server = Server::start(&served, &certs);
    let ctx = kiln.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM lab/busybox:1\nADD https://127.0.0.1:{}/payload.txt /payload.txt\n\
             RUN cat /payload.txt && stat -c %a /payload.txt\n",
            server.1
        ),
    )
    .unwrap();
    let build = |ca: Option<&Path>| {
        let mut cmd = kiln.cmd(["build", "--progress", "plain", "--no-cache"]);
        cmd.arg(&ctx);
        if let Some(ca) = ca {
            cmd.env("SSL_CERT_FILE", ca);
        }
        cmd.output().expect("running kiln")
    };

    let untrusted = build(None);
    let err = String::from_utf8_lossy(&untrusted.stderr);
    assert!(!untrusted.status.success(), "an unknown CA was trusted");
    assert!(err.contains("UnknownIssuer"), "{err}");

    let trusted = build(Some(&certs.join("ca.crt")));
    let out = String::from_utf8_lossy(&trusted.stderr);
    assert!(trusted.status.success(), "{out}");
    assert!(out.contains("fetched over https"), "{out}");
    assert!(
        out.lines().any(|l| l.ends_with(" 600")),
        "ADD of a URL is mode 600:\n{out}"
    );
}
