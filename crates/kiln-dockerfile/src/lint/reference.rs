//! Image references and platforms as BuildKit validates them in FROM: docker's
//! `reference.ParseNormalizedNamed` and containerd's `platforms.Parse`.

use std::sync::OnceLock;

use regex::Regex;

/// The grammar of `distribution/reference`: `[domain[:port]/]path[:tag][@digest]`.
fn reference_regex() -> Option<&'static Regex> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    RE.get_or_init(|| {
        let alnum = "[a-z0-9]+";
        let sep = "(?:[._]|__|[-]+)";
        let component = format!("{alnum}(?:{sep}{alnum})*");
        let domain_part = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
        let host = format!(r"(?:{domain_part}(?:\.{domain_part})*|\[[a-fA-F0-9:]+\])");
        let domain = format!("{host}(?::[0-9]+)?");
        let name = format!("(?:{domain}/)?{component}(?:/{component})*");
        // Go's `\w` is ASCII-only; spelled out, the class also compiles ~100x faster than
        // Rust's Unicode `\w` under the `{0,127}` repetition (that compile was most of a warm
        // rebuild's CPU time).
        let tag = "[0-9A-Za-z_][0-9A-Za-z_.-]{0,127}";
        let digest = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}";
        Regex::new(&format!("^({name})(?::{tag})?(?:@{digest})?$")).ok()
    })
    .as_ref()
}

/// True when `text` would parse as a base image name (`busybox`, `ghcr.io/a/b:1@sha256:…`).
pub fn valid_image(text: &str) -> bool {
    let is_hex_id =
        text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if is_hex_id {
        return false;
    }
    let (domain, remainder) = split_domain(text);
    let remote = remainder.split(':').next().unwrap_or("");
    if remote.to_lowercase() != remote {
        return false;
    }
    let full = format!("{domain}/{remainder}");
    let Some(captures) = reference_regex().and_then(|re| re.captures(&full)) else {
        return false;
    };
    captures
        .get(1)
        .is_some_and(|name| name.as_str().len() <= 255)
}

/// Docker Hub normalisation: a first component without `.`/`:` (and not `localhost`) is a path.
fn split_domain(name: &str) -> (&str, String) {
    let hub = |rest: &str| {
        let rest = if rest.contains('/') {
            rest.to_owned()
        } else {
            format!("library/{rest}")
        };
        ("docker.io", rest)
    };
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.to_lowercase() != first =>
        {
            (first, rest.to_owned())
        }
        _ => hub(name),
    }
}

/// A platform's OS and architecture, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformSpec {
    pub os: String,
    pub arch: String,
}

const KNOWN_OS: &[&str] = &[
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "hurd",
    "illumos",
    "ios",
    "js",
    "linux",
    "nacl",
    "netbsd",
    "openbsd",
    "plan9",
    "solaris",
    "windows",
    "zos",
];
const KNOWN_ARCH: &[&str] = &[
    "386",
    "amd64",
    "amd64p32",
    "arm",
    "armbe",
    "arm64",
    "arm64be",
    "ppc64",
    "ppc64le",
    "loong64",
    "mips",
    "mipsle",
    "mips64",
    "mips64le",
    "mips64p32",
    "mips64p32le",
    "ppc",
    "riscv",
    "riscv64",
    "s390",
    "s390x",
    "sparc",
    "sparc64",
    "wasm",
];

/// containerd's `platforms.Parse`: `os`, `arch`, `os/arch` or `os/arch/variant`; `None` when it
/// would fail. A lone OS gets the host architecture, a lone architecture the OS `linux`.
pub fn parse_platform(text: &str) -> Option<PlatformSpec> {
    let parts: Vec<&str> = text.split('/').collect();
    let valid = |p: &&str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    if !parts.iter().all(valid) {
        return None;
    }
    match parts.as_slice() {
        [one] => {
            let lower = one.to_lowercase();
            if KNOWN_OS.contains(&lower.as_str()) {
                let host = crate::stages::Platform::host().architecture;
                return Some(PlatformSpec {
                    os: lower,
                    arch: host,
                });
            }
            let arch = normalize_arch(one);
            KNOWN_ARCH.contains(&arch.as_str()).then(|| PlatformSpec {
                os: "linux".into(),
                arch,
            })
        }
        [os, arch] | [os, arch, _] => Some(PlatformSpec {
            os: normalize_os(os),
            arch: normalize_arch(arch),
        }),
        _ => None,
    }
}

fn normalize_os(os: &str) -> String {
    match os.to_lowercase().as_str() {
        "macos" => "darwin".into(),
        other => other.into(),
    }
}

fn normalize_arch(arch: &str) -> String {
    match arch.to_lowercase().as_str() {
        "i386" => "386".into(),
        "x86_64" | "x86-64" => "amd64".into(),
        "aarch64" => "arm64".into(),
        "armhf" | "armel" => "arm".into(),
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references() {
        for ok in [
            "busybox",
            "busybox:latest",
            "ghcr.io/a/b:1.2",
            "localhost:5000/x",
            "a/b@sha256:0123456789abcdef0123456789abcdef",
        ] {
            assert!(valid_image(ok), "{ok}");
        }
        for bad in [
            "",
            "busybox:",
            "Busybox",
            "busy box",
            ":tag",
            "a//b",
            "busybox:t\u{e9}g",
            &"a".repeat(300),
        ] {
            assert!(!valid_image(bad), "{bad}");
        }
    }

    #[test]
    fn platforms() {
        assert_eq!(
            parse_platform("linux/x86_64"),
            Some(PlatformSpec {
                os: "linux".into(),
                arch: "amd64".into()
            })
        );
        assert_eq!(parse_platform("arm64").map(|p| p.os), Some("linux".into()));
        assert_eq!(parse_platform("linux/"), None);
        assert_eq!(parse_platform("bogus"), None);
    }
}
