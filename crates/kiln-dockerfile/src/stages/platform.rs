//! Platforms and the automatic ARGs BuildKit defines from them (`TARGETPLATFORM`, `BUILDARCH`, ...).

use std::fmt;

/// An OCI platform (`os/arch[/variant]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: String,
}

impl Platform {
    /// The platform of the machine kiln runs on (Linux, OCI architecture names).
    pub fn host() -> Self {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", ""),
            "x86" => ("386", ""),
            "aarch64" => ("arm64", ""),
            "arm" => ("arm", "v7"),
            "powerpc64" => ("ppc64le", ""),
            "riscv64" => ("riscv64", ""),
            "s390x" => ("s390x", ""),
            other => (other, ""),
        };
        Self {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: variant.into(),
        }
    }

    /// Parses `os/arch[/variant]`; the parts are lower-cased, none may be empty.
    pub fn parse(text: &str) -> Option<Self> {
        let parts: Vec<String> = text.split('/').map(str::to_ascii_lowercase).collect();
        if parts.iter().any(String::is_empty) {
            return None;
        }
        match parts.as_slice() {
            [os, arch] => Some(Self {
                os: os.clone(),
                architecture: arch.clone(),
                variant: String::new(),
            }),
            [os, arch, variant] => Some(Self {
                os: os.clone(),
                architecture: arch.clone(),
                variant: variant.clone(),
            }),
            _ => None,
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

/// The ARGs BuildKit predefines in the global scope, in its order, before build-arg overrides.
pub fn automatic_args(
    target: &Platform,
    build: &Platform,
    target_stage: &str,
) -> Vec<(String, String)> {
    [
        ("BUILDPLATFORM", build.to_string()),
        ("BUILDOS", build.os.clone()),
        ("BUILDOSVERSION", String::new()),
        ("BUILDARCH", build.architecture.clone()),
        ("BUILDVARIANT", build.variant.clone()),
        ("TARGETPLATFORM", target.to_string()),
        ("TARGETOS", target.os.clone()),
        ("TARGETOSVERSION", String::new()),
        ("TARGETARCH", target.architecture.clone()),
        ("TARGETVARIANT", target.variant.clone()),
        ("TARGETSTAGE", target_stage.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Build-args that need no ARG declaration: BuildKit hands them to RUN as proxy settings.
pub const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_format() {
        let p = Platform::parse("linux/ARM/v7").unwrap();
        assert_eq!(p.to_string(), "linux/arm/v7");
        assert_eq!(Platform::parse("linux/amd64").unwrap().variant, "");
        assert_eq!(Platform::parse("linux"), None);
        assert_eq!(Platform::parse("linux//v7"), None);
    }

    #[test]
    fn automatic_args_follow_the_platforms() {
        let t = Platform::parse("linux/arm64").unwrap();
        let b = Platform::parse("linux/amd64").unwrap();
        let args = automatic_args(&t, &b, "final");
        let get = |k: &str| args.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("TARGETPLATFORM"), Some("linux/arm64"));
        assert_eq!(get("BUILDARCH"), Some("amd64"));
        assert_eq!(get("TARGETSTAGE"), Some("final"));
        assert_eq!(args.len(), 11);
    }
}
