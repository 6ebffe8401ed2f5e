//! `--filter` values for `images` and `image prune`, with Docker semantics.

use std::collections::BTreeMap;

use crate::error::{Result, StoreError};
use crate::fsutil::now;
use crate::record::ImageRecord;

/// `label=KEY`, `label=KEY=VALUE`, or their `label!=` negations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelFilter {
    /// Label key.
    pub key: String,
    /// Required value; `None` means "key present".
    pub value: Option<String>,
    /// `label!=`: keep images that do *not* match.
    pub negated: bool,
}

impl LabelFilter {
    pub(crate) fn parse(spec: &str, negated: bool) -> Self {
        let (key, value) = match spec.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (spec.to_string(), None),
        };
        Self {
            key,
            value,
            negated,
        }
    }

    /// Whether `labels` pass this filter.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let hit = match &self.value {
            None => labels.contains_key(&self.key),
            Some(v) => labels.get(&self.key) == Some(v),
        };
        hit != self.negated
    }
}

/// Filters of `kiln images`: label filters are ANDed, reference patterns
/// ORed, as in Docker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageFilter {
    /// `-a`: include intermediate (build stage) images.
    pub all: bool,
    /// `dangling=true|false`.
    pub dangling: Option<bool>,
    /// `label=` filters.
    pub labels: Vec<LabelFilter>,
    /// `reference=` glob patterns on familiar names.
    pub references: Vec<String>,
    /// `until=`: only images older than this Unix time.
    pub until: Option<i64>,
}

impl ImageFilter {
    /// Parses `key=value` filter strings.
    pub fn parse<S: AsRef<str>>(all: bool, filters: &[S]) -> Result<Self> {
        let mut f = Self {
            all,
            ..Self::default()
        };
        for raw in filters.iter().map(AsRef::as_ref) {
            match split_filter(raw)? {
                ("label", false, v) => f.labels.push(LabelFilter::parse(v, false)),
                ("label", true, v) => f.labels.push(LabelFilter::parse(v, true)),
                ("dangling", false, v) => f.dangling = Some(parse_bool(raw, v)?),
                ("reference", false, v) if kiln_image::path_match(v, "").is_some() => {
                    f.references.push(v.to_string());
                }
                ("until", false, v) => f.until = Some(parse_until(v, now())?),
                _ => return Err(StoreError::InvalidFilter(raw.to_string())),
            }
        }
        Ok(f)
    }

    /// Whether `img` is listed; narrows `img.tags` to the matching ones when
    /// reference patterns are given, as `docker images` does.
    pub(crate) fn keep(&self, img: &mut ImageRecord) -> bool {
        if img.intermediate.is_some() && !self.all && img.tags.is_empty() {
            return false;
        }
        if self.dangling.is_some_and(|d| d != img.is_dangling()) {
            return false;
        }
        if !self.labels.iter().all(|l| l.matches(&img.labels)) {
            return false;
        }
        if self.until.is_some_and(|t| img.timestamp() >= t) {
            return false;
        }
        if self.references.is_empty() {
            return true;
        }
        img.tags.retain(|t| {
            self.references
                .iter()
                .any(|p| t.familiar_match(p).unwrap_or(false))
        });
        !img.tags.is_empty()
    }
}

/// Filters of `kiln image prune`: which dangling images to remove.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneFilter {
    /// `until=`: only images older than this Unix time.
    pub until: Option<i64>,
    /// `label=` / `label!=` filters, ANDed.
    pub labels: Vec<LabelFilter>,
}

impl PruneFilter {
    /// Parses `until=` and `label=`/`label!=` filter strings.
    pub fn parse<S: AsRef<str>>(filters: &[S]) -> Result<Self> {
        let mut f = Self::default();
        for raw in filters.iter().map(AsRef::as_ref) {
            match split_filter(raw)? {
                ("label", negated, v) => f.labels.push(LabelFilter::parse(v, negated)),
                ("until", false, v) => f.until = Some(parse_until(v, now())?),
                _ => return Err(StoreError::InvalidFilter(raw.to_string())),
            }
        }
        Ok(f)
    }

    /// Whether a dangling image is pruned.
    pub(crate) fn selects(&self, img: &ImageRecord) -> bool {
        self.until.is_none_or(|t| img.timestamp() < t)
            && self.labels.iter().all(|l| l.matches(&img.labels))
    }
}

/// Splits `key=value` / `key!=value` into (key, negated, value).
fn split_filter(raw: &str) -> Result<(&str, bool, &str)> {
    let (key, value) = raw
        .split_once('=')
        .ok_or_else(|| StoreError::InvalidFilter(raw.to_string()))?;
    Ok(match key.strip_suffix('!') {
        Some(k) => (k, true, value),
        None => (key, false, value),
    })
}

fn parse_bool(raw: &str, v: &str) -> Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(StoreError::InvalidFilter(raw.to_string())),
    }
}

/// `until=` value as a Unix time: a Go-style duration before `now`
/// (`24h`, `1h30m`), Unix seconds, or an RFC 3339 timestamp.
pub fn parse_until(v: &str, now: i64) -> Result<i64> {
    let bad = || StoreError::InvalidFilter(format!("until={v}"));
    if let Ok(secs) = v.parse::<i64>() {
        return Ok(secs);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Ok(t.timestamp());
    }
    let d = humantime::parse_duration(v).map_err(|_| bad())?;
    let secs = i64::try_from(d.as_secs()).map_err(|_| bad())?;
    Ok(now.saturating_sub(secs))
}
