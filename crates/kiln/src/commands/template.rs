//! The subset of Go templates `--format` takes: text, `{{.Field.Sub}}`, `{{.}}` and
//! `{{json .Field}}`, evaluated over the JSON document of what is printed.

use anyhow::{anyhow, bail};
use serde_json::Value;

/// A parsed `--format` template.
#[derive(Debug)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug)]
enum Part {
    Text(String),
    Field { path: Vec<String>, json: bool },
}

impl Template {
    /// Parses `text`, turning `\t` and `\n` escapes into tabs and newlines as docker does.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let text = text.replace("\\t", "\t").replace("\\n", "\n");
        let mut parts = Vec::new();
        let mut rest = text.as_str();
        while let Some(start) = rest.find("{{") {
            parts.push(Part::Text(rest[..start].to_owned()));
            let end = rest[start..]
                .find("}}")
                .ok_or_else(|| anyhow!("template {text:?}: unclosed action"))?;
            parts.push(action(&rest[start + 2..start + end], &text)?);
            rest = &rest[start + end + 2..];
        }
        parts.push(Part::Text(rest.to_owned()));
        Ok(Self { parts })
    }

    /// Fills the template with fields of `value`.
    pub fn render(&self, value: &Value) -> anyhow::Result<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Field { path, json } => {
                    let field = lookup(value, path);
                    if *json {
                        out.push_str(&serde_json::to_string(field.unwrap_or(&Value::Null))?);
                    } else {
                        out.push_str(&go_print(field));
                    }
                }
            }
        }
        Ok(out)
    }
}

fn action(inner: &str, text: &str) -> anyhow::Result<Part> {
    let inner = inner.trim_matches('-').trim();
    let (json, arg) = match inner.split_once(char::is_whitespace) {
        Some(("json", arg)) => (true, arg.trim()),
        Some((func, _)) => bail!("template {text:?}: function {func:?} not supported"),
        None => (false, inner),
    };
    let Some(path) = arg.strip_prefix('.') else {
        bail!("template {text:?}: unsupported action {{{{{inner}}}}}");
    };
    let path = path
        .split('.')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    Ok(Part::Field { path, json })
}

fn lookup<'v>(value: &'v Value, path: &[String]) -> Option<&'v Value> {
    path.iter().try_fold(value, |v, key| v.get(key))
}

/// How Go's text/template prints a value: strings bare, maps as `map[k:v]`, lists as `[a b]`.
fn go_print(value: Option<&Value>) -> String {
    match value {
        None => "<no value>".to_owned(),
        Some(Value::Null) => "<nil>".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => {
            let items: Vec<String> = items.iter().map(|v| go_print(Some(v))).collect();
            format!("[{}]", items.join(" "))
        }
        Some(Value::Object(map)) => {
            let mut items: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}:{}", go_print(Some(v))))
                .collect();
            items.sort();
            format!("map[{}]", items.join(" "))
        }
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_fields_and_json() {
        let doc = json!({"Id": "sha256:ab", "Config": {"Cmd": ["sh"], "Env": null}});
        let t =
            Template::parse("{{.Id}}\\t{{json .Config.Cmd}} {{.Config.Cmd}} {{.Nope}}").unwrap();
        assert_eq!(
            t.render(&doc).unwrap(),
            "sha256:ab\t[\"sh\"] [sh] <no value>"
        );
    }

    #[test]
    fn rejects_unknown_functions_and_unclosed_actions() {
        assert!(Template::parse("{{upper .Id}}").is_err());
        assert!(Template::parse("{{.Id").is_err());
    }
}
