//! `SOURCE_DATE_EPOCH`: the one timestamp in everything a build makes, so the same inputs give
//! the same image digest on any machine, cold or cached.
//!
//! Layers kiln writes clamp every mtime to it, and the history entries of the build's steps and
//! the image config's `created` are it. It comes from the build-arg of that name (as BuildKit
//! takes it; the CLI fills it from its environment, as buildx does) and is 0 (the Unix epoch)
//! when unset. Base image layers and history are kept as they are.

use std::collections::BTreeMap;

use crate::error::{BuildError, Result};

/// The build-arg naming the epoch.
pub const SOURCE_DATE_EPOCH: &str = "SOURCE_DATE_EPOCH";

/// The build's epoch, in seconds and as configs record it.
#[derive(Debug, Clone)]
pub(crate) struct Epoch {
    /// Seconds since the Unix epoch.
    pub secs: i64,
    /// RFC 3339 UTC, as history entries and configs record it.
    pub created: String,
}

impl Epoch {
    /// The epoch of a build with `build_args`: its `SOURCE_DATE_EPOCH`, else 0.
    pub fn from_build_args(build_args: &BTreeMap<String, String>) -> Result<Self> {
        let secs = match build_args.get(SOURCE_DATE_EPOCH) {
            None => 0,
            Some(raw) => raw
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|s| *s >= 0)
                .ok_or_else(|| {
                    BuildError::Invalid(format!(
                        "invalid {SOURCE_DATE_EPOCH} {raw:?}: expected seconds since 1970"
                    ))
                })?,
        };
        let created = chrono::DateTime::from_timestamp(secs, 0)
            .ok_or_else(|| {
                BuildError::Invalid(format!("{SOURCE_DATE_EPOCH} {secs} is out of range"))
            })?
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
        Ok(Self { secs, created })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(value: Option<&str>) -> Result<Epoch> {
        let args = value
            .map(|v| BTreeMap::from([(SOURCE_DATE_EPOCH.to_string(), v.to_string())]))
            .unwrap_or_default();
        Epoch::from_build_args(&args)
    }

    #[test]
    fn defaults_to_the_unix_epoch() {
        let e = epoch(None).unwrap();
        assert_eq!((e.secs, e.created.as_str()), (0, "1970-01-01T00:00:00Z"));
    }

    #[test]
    fn takes_the_build_arg() {
        let e = epoch(Some("1700000000")).unwrap();
        assert_eq!(e.secs, 1_700_000_000);
        assert_eq!(e.created, "2023-11-14T22:13:20Z");
    }

    #[test]
    fn rejects_what_is_not_seconds() {
        for bad in ["", "x", "-1", "1.5", "99999999999999999"] {
            assert!(epoch(Some(bad)).is_err(), "{bad:?} accepted");
        }
    }
}
