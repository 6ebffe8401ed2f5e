//! Platforms (`os/arch[/variant]`) and the matching rules used to pick a
//! manifest out of a manifest list, following containerd's normalisation so
//! `linux/arm64` and `linux/arm64/v8` are the same thing.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// The platform an image is wanted for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// Operating system, e.g. `linux`.
    pub os: String,
    /// CPU architecture in Go naming, e.g. `amd64`, `arm64`.
    pub architecture: String,
    /// CPU variant, e.g. `v7`; `None` for the architecture's default.
    pub variant: Option<String>,
}

impl Platform {
    /// Builds a normalised platform (`aarch64` → `arm64`, `arm64/v8` → `arm64`).
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        let (architecture, variant) = normalize_arch(architecture, variant.unwrap_or(""));
        Self {
            os: os.to_ascii_lowercase(),
            architecture,
            variant,
        }
    }

    /// Linux on the CPU this program was compiled for: images are Linux even
    /// when kiln is not.
    pub fn host() -> Self {
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", None),
            "arm" => ("arm", Some("v7")),
            "x86" => ("386", None),
            "powerpc64" => ("ppc64le", None),
            other => (other, None),
        };
        Self::new("linux", arch, variant)
    }

    /// Whether an image for `other` runs here, and how well: `Some(0)` is an
    /// exact match, higher numbers are older compatible variants (an armv7
    /// host also runs armv6 images), `None` does not run.
    pub(crate) fn rank(&self, other: &Platform) -> Option<usize> {
        if self.os != other.os || self.architecture != other.architecture {
            return None;
        }
        self.compatible_variants()
            .iter()
            .position(|v| v.as_deref() == other.variant.as_deref())
    }

    /// Variants this platform can run, best first.
    fn compatible_variants(&self) -> Vec<Option<String>> {
        let own = self.variant.clone();
        let older = |family: &[&str]| -> Vec<Option<String>> {
            let start = family
                .iter()
                .position(|v| Some(*v) == own.as_deref())
                .unwrap_or(family.len());
            family[start..]
                .iter()
                .map(|v| Some(v.to_string()))
                .collect()
        };
        match self.architecture.as_str() {
            "arm" => older(&["v8", "v7", "v6", "v5"]),
            "amd64" => {
                let mut v = older(&["v4", "v3", "v2"]);
                v.push(None);
                v
            }
            _ => vec![own],
        }
    }
}

/// containerd's architecture aliases and default variants.
fn normalize_arch(arch: &str, variant: &str) -> (String, Option<String>) {
    let arch = arch.to_ascii_lowercase();
    let variant = variant.to_ascii_lowercase();
    let (arch, variant) = match (arch.as_str(), variant.as_str()) {
        ("x86_64" | "x86-64" | "amd64", "" | "v1") => ("amd64", ""),
        ("x86_64" | "x86-64" | "amd64", v) => ("amd64", v),
        ("i386", v) => ("386", v),
        ("aarch64" | "arm64", "" | "v8" | "8") => ("arm64", ""),
        ("aarch64" | "arm64", v) => ("arm64", v),
        ("armhf", _) => ("arm", "v7"),
        ("armel", _) => ("arm", "v6"),
        ("arm", "" | "7") => ("arm", "v7"),
        ("arm", "5" | "6" | "8") => {
            return ("arm".into(), Some(format!("v{variant}")));
        }
        (a, v) => (a, v),
    };
    let variant = (!variant.is_empty()).then(|| variant.to_string());
    (arch.to_string(), variant)
}

impl FromStr for Platform {
    type Err = Error;

    /// Parses `os/arch[/variant]`.
    fn from_str(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] if !os.is_empty() && !arch.is_empty() => Ok(Self::new(os, arch, None)),
            [os, arch, variant] if !os.is_empty() && !arch.is_empty() && !variant.is_empty() => {
                Ok(Self::new(os, arch, Some(variant)))
            }
            _ => Err(Error::InvalidPlatform(s.to_string())),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match &self.variant {
            Some(v) => write!(f, "/{v}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Platform {
        s.parse().unwrap()
    }

    #[test]
    fn normalises_aliases() {
        assert_eq!(p("linux/aarch64"), p("linux/arm64/v8"));
        assert_eq!(p("linux/x86_64").to_string(), "linux/amd64");
        assert_eq!(p("linux/arm").to_string(), "linux/arm/v7");
        assert_eq!(p("linux/armhf").to_string(), "linux/arm/v7");
    }

    #[test]
    fn ranks_variants_best_first() {
        let v7 = p("linux/arm/v7");
        assert_eq!(v7.rank(&p("linux/arm/v7")), Some(0));
        assert_eq!(v7.rank(&p("linux/arm/v6")), Some(1));
        assert_eq!(v7.rank(&p("linux/arm/v8")), None);
        assert_eq!(v7.rank(&p("linux/arm64")), None);
        assert_eq!(p("linux/amd64").rank(&p("linux/amd64")), Some(0));
        assert_eq!(p("linux/amd64").rank(&p("linux/amd64/v3")), None);
        assert_eq!(p("linux/amd64/v3").rank(&p("linux/amd64")), Some(2));
        assert_eq!(p("linux/amd64").rank(&p("windows/amd64")), None);
    }

    #[test]
    fn rejects_malformed() {
        for bad in ["linux", "linux/", "/amd64", "a/b/c/d", "linux/arm/"] {
            assert!(bad.parse::<Platform>().is_err(), "{bad}");
        }
    }
}
