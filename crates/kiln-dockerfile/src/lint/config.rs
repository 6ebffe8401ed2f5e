//! The `# check=` directive (or the `BUILDKIT_DOCKERFILE_CHECK` build-arg, which wins over it):
//! `skip=Rule1,Rule2` or `skip=all`, `error=true`, `experimental=Rule|all`, `;`-separated.

use std::collections::BTreeSet;

use super::rules::Rule;

/// Which checks run and whether findings fail the build.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckConfig {
    pub skip_all: bool,
    pub skip: BTreeSet<String>,
    pub experimental_all: bool,
    pub experimental: BTreeSet<String>,
    /// `error=true`: any finding makes the build fail.
    pub error: bool,
}

impl CheckConfig {
    /// Parses the directive value as BuildKit does: at most three `;`-separated options (a
    /// fourth stays part of the third), keys trimmed, `error` read as a Go boolean.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let mut config = Self::default();
        if text.is_empty() {
            return Ok(config);
        }
        for part in text.splitn(3, ';') {
            let Some((key, value)) = part.split_once('=') else {
                return Err(format!("invalid check option {part:?}"));
            };
            match key.trim() {
                "skip" => config.skip_all |= names(value, &mut config.skip),
                "experimental" => config.experimental_all |= names(value, &mut config.experimental),
                "error" => {
                    config.error = go_bool(value.trim()).ok_or_else(|| bool_error(part, value))?
                }
                other => return Err(format!("invalid check option {other:?}")),
            }
        }
        Ok(config)
    }

    /// True when `rule` should run: experimental checks only when enabled (even under
    /// `skip=all`), the others unless skipped.
    pub fn enabled(&self, rule: &Rule) -> bool {
        if rule.experimental {
            return self.experimental_all || self.experimental.contains(rule.name);
        }
        !(self.skip_all || self.skip.contains(rule.name))
    }
}

/// Adds the comma-separated names to `set`; true for `all`.
fn names(value: &str, set: &mut BTreeSet<String>) -> bool {
    let value = value.trim();
    if value == "all" {
        return true;
    }
    set.extend(value.split(',').map(|n| n.trim().to_owned()));
    false
}

/// Go's `strconv.ParseBool`.
fn go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn bool_error(part: &str, value: &str) -> String {
    format!(
        "failed to parse check option {part:?}: strconv.ParseBool: parsing {:?}: invalid syntax",
        value.trim()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_skip_error_and_experimental() {
        let c = CheckConfig::parse(" skip = A, B ;error=True;experimental=all").unwrap();
        assert!(c.skip.contains("A") && c.skip.contains("B") && !c.skip_all);
        assert!(c.error && c.experimental_all);
        assert!(CheckConfig::parse("skip=all").unwrap().skip_all);
        assert_eq!(CheckConfig::parse("").unwrap(), CheckConfig::default());
    }

    #[test]
    fn rejects_bad_options() {
        assert_eq!(
            CheckConfig::parse("skip").unwrap_err(),
            "invalid check option \"skip\""
        );
        assert_eq!(
            CheckConfig::parse("warn=1").unwrap_err(),
            "invalid check option \"warn\""
        );
        assert_eq!(
            CheckConfig::parse("error=maybe").unwrap_err(),
            "failed to parse check option \"error=maybe\": strconv.ParseBool: parsing \"maybe\": invalid syntax"
        );
    }
}
