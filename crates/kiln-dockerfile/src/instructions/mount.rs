//! `RUN --mount=` values: CSV `key=value` fields parsed into a typed [`Mount`], checked like
//! BuildKit's `parseMount` (same messages, same order-dependent rules for `required` and `size`).

use super::suggest::did_you_mean;
use super::types::Source;

/// The mount types `RUN --mount=type=` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountType {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

impl MountType {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "bind" => Self::Bind,
            "cache" => Self::Cache,
            "tmpfs" => Self::Tmpfs,
            "secret" => Self::Secret,
            "ssh" => Self::Ssh,
            _ => return None,
        })
    }

    /// The name as written in a Dockerfile.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bind => "bind",
            Self::Cache => "cache",
            Self::Tmpfs => "tmpfs",
            Self::Secret => "secret",
            Self::Ssh => "ssh",
        }
    }
}

/// Cache mount `sharing=` modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    Shared,
    Private,
    Locked,
}

/// A parsed `--mount`. Empty string options count as unset, as in BuildKit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub kind: MountType,
    /// `from=`: a stage name or an image.
    pub from: Option<String>,
    /// `from=` resolved against the stages (set by [`crate::stages::stages`]).
    pub source_ref: Option<Source>,
    /// `source=`/`src=`.
    pub source: Option<String>,
    /// `target=`/`dst=`/`destination=`.
    pub target: Option<String>,
    pub read_only: bool,
    /// tmpfs `size=` in bytes.
    pub size: Option<u64>,
    /// `id=`: cache id or secret id.
    pub id: Option<String>,
    pub sharing: Option<Sharing>,
    /// secret/ssh: fail when the secret or agent is missing.
    pub required: bool,
    /// secret `env=`: expose the secret as this environment variable (empty: the default name).
    pub env: Option<String>,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// Why a mount did not parse, with the byte range of the offending part of the flag value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountError {
    pub message: String,
    pub start: usize,
    pub end: usize,
}

/// Expands one option value; gets the (lower-cased) key too, so callers can treat `from` apart.
type Expand<'a> = dyn FnMut(&str, &str) -> Result<String, String> + 'a;

const ALL_KEYS: &[&str] = &[
    "type",
    "from",
    "source",
    "target",
    "readonly",
    "id",
    "sharing",
    "required",
    "size",
    "mode",
    "uid",
    "gid",
    "src",
    "dst",
    "destination",
    "ro",
    "rw",
    "readwrite",
    "env",
];

impl Mount {
    fn new() -> Self {
        Self {
            kind: MountType::Bind,
            from: None,
            source_ref: None,
            source: None,
            target: None,
            read_only: false,
            size: None,
            id: None,
            sharing: None,
            required: false,
            env: None,
            mode: None,
            uid: None,
            gid: None,
        }
    }

    /// Parses a `--mount` value; `expand` is applied to every option value first.
    pub fn parse(text: &str, expand: &mut Expand<'_>) -> Result<Self, MountError> {
        let fields = split_csv(text).map_err(|message| MountError {
            message,
            start: 0,
            end: text.len(),
        })?;
        let mut m = Self::new();
        let mut ro_auto = true;
        for (field, start) in &fields {
            let at = |message: String| MountError {
                message,
                start: *start,
                end: start + field.len(),
            };
            m.apply_field(field, &mut ro_auto, expand).map_err(at)?;
        }
        if ro_auto {
            m.read_only = !matches!(m.kind, MountType::Cache | MountType::Tmpfs);
        }
        m.validate().map_err(|message| MountError {
            message,
            start: 0,
            end: text.len(),
        })?;
        Ok(m)
    }

    fn apply_field(
        &mut self,
        field: &str,
        ro_auto: &mut bool,
        expand: &mut Expand<'_>,
    ) -> Result<(), String> {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), v),
            None => return self.apply_bare(&field.to_ascii_lowercase(), field, ro_auto),
        };
        let value = expand(&key, value)?;
        self.apply_value(&key, field, value, ro_auto)
    }

    fn apply_bare(&mut self, key: &str, field: &str, ro_auto: &mut bool) -> Result<(), String> {
        match key {
            "readonly" | "ro" => self.read_only = true,
            "readwrite" | "rw" => self.read_only = false,
            "required" => return self.set_required(key, true),
            _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
        }
        *ro_auto = false;
        Ok(())
    }

    fn set_required(&mut self, key: &str, value: bool) -> Result<(), String> {
        if !matches!(self.kind, MountType::Secret | MountType::Ssh) {
            return Err(format!(
                "unexpected key '{key}' for mount type '{}'",
                self.kind.as_str()
            ));
        }
        self.required = value;
        Ok(())
    }

    fn apply_value(
        &mut self,
        key: &str,
        field: &str,
        value: String,
        ro_auto: &mut bool,
    ) -> Result<(), String> {
        let some = |v: String| (!v.is_empty()).then_some(v);
        match key {
            "type" => self.kind = parse_type(&value)?,
            "from" => self.from = some(value),
            "source" | "src" => self.source = some(value),
            "target" | "dst" | "destination" => self.target = some(value),
            "readonly" | "ro" => {
                self.read_only = parse_bool(key, &value)?;
                *ro_auto = false;
            }
            "readwrite" | "rw" => {
                self.read_only = !parse_bool(key, &value)?;
                *ro_auto = false;
            }
            "required" => self.set_required(key, parse_bool(key, &value)?)?,
            "size" => self.set_size(key, &value)?,
            "id" => self.id = some(value),
            "sharing" => self.sharing = Some(parse_sharing(&value)?),
            "mode" => self.mode = Some(parse_u32(&value, 8, "mode")?),
            "uid" => self.uid = Some(parse_u32(&value, 10, "uid")?),
            "gid" => self.gid = Some(parse_u32(&value, 10, "gid")?),
            "env" => self.env = Some(value),
            _ => {
                let msg = format!("unexpected key '{key}' in '{field}'");
                return Err(did_you_mean(msg, key, ALL_KEYS));
            }
        }
        Ok(())
    }

    fn set_size(&mut self, key: &str, value: &str) -> Result<(), String> {
        if self.kind != MountType::Tmpfs {
            return Err(format!(
                "unexpected key '{key}' for mount type '{}'",
                self.kind.as_str()
            ));
        }
        let size =
            ram_in_bytes(value).ok_or_else(|| format!("invalid value for {key}: {value}"))?;
        self.size = Some(size);
        Ok(())
    }

    fn validate(&self) -> Result<(), String> {
        let file_info = matches!(
            self.kind,
            MountType::Secret | MountType::Ssh | MountType::Cache
        );
        for (set, what) in [
            (self.mode.is_some(), "mode"),
            (self.uid.is_some(), "uid"),
            (self.gid.is_some(), "gid"),
        ] {
            if set && !file_info {
                return Err(format!(
                    "{what} not allowed for \"{}\" type mounts",
                    self.kind.as_str()
                ));
            }
        }
        if self.kind == MountType::Secret {
            self.validate_secret()?;
        }
        if self.sharing.is_some() && self.kind != MountType::Cache {
            return Err(format!(
                "invalid cache sharing set for {} mount",
                self.kind.as_str()
            ));
        }
        Ok(())
    }

    fn validate_secret(&self) -> Result<(), String> {
        if self.from.is_some() {
            return Err("secret mount should not have a from".into());
        }
        if self.sharing.is_some() {
            return Err("secret mount should not define sharing".into());
        }
        if self.source.is_none() && self.target.is_none() && self.id.is_none() {
            return Err("invalid secret mount. one of source, target required".into());
        }
        if self.source.is_some() && self.id.is_some() {
            return Err("both source and id can't be set".into());
        }
        Ok(())
    }
}

fn parse_type(value: &str) -> Result<MountType, String> {
    MountType::parse(&value.to_ascii_lowercase()).ok_or_else(|| {
        let msg = format!("unsupported mount type \"{value}\"");
        did_you_mean(msg, value, &["bind", "cache", "tmpfs", "secret", "ssh"])
    })
}

fn parse_sharing(value: &str) -> Result<Sharing, String> {
    match value.to_ascii_lowercase().as_str() {
        "shared" => Ok(Sharing::Shared),
        "private" => Ok(Sharing::Private),
        "locked" => Ok(Sharing::Locked),
        _ => {
            let msg = format!("unsupported sharing value \"{value}\"");
            Err(did_you_mean(msg, value, &["shared", "private", "locked"]))
        }
    }
}

/// Go's `strconv.ParseBool`.
fn go_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn parse_bool(key: &str, value: &str) -> Result<bool, String> {
    go_bool(value).ok_or_else(|| format!("invalid value for {key}: {value}"))
}

/// Go's `strconv.ParseUint(value, radix, 32)`: digits only, no sign or prefix.
fn parse_u32(value: &str, radix: u32, what: &str) -> Result<u32, String> {
    let digits_only = !value.is_empty() && value.chars().all(|c| c.is_digit(radix));
    digits_only
        .then(|| u32::from_str_radix(value, radix).ok())
        .flatten()
        .ok_or_else(|| format!("invalid value {value} for {what}"))
}

/// docker/go-units `RAMInBytes`: `<number>[ ][kmgtp][i][b]`, binary multiples.
fn ram_in_bytes(value: &str) -> Option<u64> {
    let lower = value.to_ascii_lowercase();
    let num_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(num_end);
    let unit = unit.strip_prefix(' ').unwrap_or(unit);
    let unit = unit.strip_suffix('b').unwrap_or(unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let shift = match unit {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        _ => return None,
    };
    let n: f64 = num.parse().ok().filter(|_| !num.starts_with('.'))?;
    let bytes = n * (1u64 << shift) as f64;
    (bytes < 1.8e19).then_some(bytes as u64)
}

/// Splits one CSV record (Go `encoding/csv` rules) into fields with their byte offsets.
fn split_csv(text: &str) -> Result<Vec<(String, usize)>, String> {
    let mut fields = Vec::new();
    let mut start = 0;
    loop {
        let (field, next) = csv_field(text, start)?;
        fields.push((field, start));
        match next {
            Some(n) => start = n,
            None => return Ok(fields),
        }
    }
}

/// One field starting at `start`, and where the next one starts (after its comma).
fn csv_field(text: &str, start: usize) -> Result<(String, Option<usize>), String> {
    let rest = &text[start..];
    let Some(quoted) = rest.strip_prefix('"') else {
        if rest.split(',').next().is_some_and(|f| f.contains('"')) {
            return Err("failed to parse csv mounts: bare \" in non-quoted-field".into());
        }
        return Ok(match rest.find(',') {
            Some(i) => (rest[..i].to_owned(), Some(start + i + 1)),
            None => (rest.to_owned(), None),
        });
    };
    let mut value = String::new();
    let mut chars = quoted.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '"' {
            value.push(c);
            continue;
        }
        if chars.next_if(|(_, c)| *c == '"').is_some() {
            value.push('"');
            continue;
        }
        let after = start + 1 + i + 1;
        return match text[after..].chars().next() {
            None => Ok((value, None)),
            Some(',') => Ok((value, Some(after + 1))),
            Some(_) => {
                Err("failed to parse csv mounts: extraneous or missing \" in quoted-field".into())
            }
        };
    }
    Err("failed to parse csv mounts: extraneous or missing \" in quoted-field".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Mount, String> {
        Mount::parse(text, &mut |_: &str, v: &str| Ok(v.to_owned())).map_err(|e| e.message)
    }

    #[test]
    fn csv_quotes_and_offsets() {
        let f = split_csv(r#"type=bind,"target=/a,b",x"#).unwrap();
        assert_eq!(
            f,
            [
                ("type=bind".into(), 0),
                ("target=/a,b".into(), 10),
                ("x".into(), 24)
            ]
        );
        assert!(split_csv(r#""abc"d"#).is_err());
        assert!(split_csv(r#"a"b"#).is_err());
        assert!(split_csv(r#""abc"#).is_err());
    }

    #[test]
    fn size_units() {
        assert_eq!(ram_in_bytes("10"), Some(10));
        assert_eq!(ram_in_bytes("1k"), Some(1024));
        assert_eq!(ram_in_bytes("1.5MiB"), Some(1_572_864));
        assert_eq!(ram_in_bytes("2 GB"), Some(2 << 30));
        assert_eq!(ram_in_bytes("1x"), None);
        assert_eq!(ram_in_bytes("k"), None);
    }

    #[test]
    fn read_only_default_depends_on_type() {
        assert!(parse("target=/x").unwrap().read_only);
        assert!(!parse("type=cache,target=/x").unwrap().read_only);
        assert!(!parse("type=bind,target=/x,rw").unwrap().read_only);
        assert!(parse("type=cache,target=/x,ro=true").unwrap().read_only);
    }

    #[test]
    fn order_dependent_keys() {
        assert_eq!(
            parse("required,type=secret,id=a").unwrap_err(),
            "unexpected key 'required' for mount type 'bind'"
        );
        assert!(parse("type=secret,id=a,required").unwrap().required);
        assert_eq!(
            parse("size=1m,type=tmpfs").unwrap_err(),
            "unexpected key 'size' for mount type 'bind'"
        );
    }

    #[test]
    fn error_offsets_point_at_the_field() {
        let e = Mount::parse(
            "type=cache,mode=9",
            &mut |_: &str, v: &str| Ok(v.to_owned()),
        )
        .unwrap_err();
        assert_eq!(
            (e.message.as_str(), e.start, e.end),
            ("invalid value 9 for mode", 11, 17)
        );
    }
}
