//! `RUN --mount=type=secret`: the `--secret` value as a read-only file bind-mounted from a
//! private temp dir outside the rootfs (so it never reaches a layer; the executor's stub cleaner
//! removes the empty mountpoint it leaves), and/or as an environment variable of that RUN only.
//! Secret contents are never part of a cache key: changing one does not re-run a step, as in
//! BuildKit.

use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt, chown};
use std::path::Path;

use kiln_dockerfile::instructions::Mount;
use kiln_executor::MountSpec;
use tempfile::TempDir;

use crate::SecretSource;
use crate::engine::Shared;
use crate::error::{BuildError, Result, io_err};
use crate::metadata::clean_path;

/// BuildKit's limit on a secret's size (`secrets.MaxSecretSize`).
const MAX_SECRET: u64 = 500 * 1024;
/// Mode of a secret file without `mode=`, as BuildKit mounts it.
const DEFAULT_MODE: u32 = 0o400;

/// What a secret mount adds to a RUN.
#[derive(Default)]
pub(crate) struct SecretMount {
    pub spec: Option<MountSpec>,
    pub env: Option<String>,
    /// Holds the secret file until the RUN is over.
    pub dir: Option<TempDir>,
}

/// The secret's id as BuildKit derives it: `id=`, else `source=`, else the target's file name.
pub(crate) fn secret_id(m: &Mount) -> String {
    m.id.clone()
        .or_else(|| m.source.clone())
        .or_else(|| {
            let target = m.target.as_deref().unwrap_or_default();
            Path::new(target)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_default()
}

/// Prepares one secret mount. A missing secret is skipped unless the mount is `required`.
pub(crate) fn prepare(shared: &Shared<'_>, m: &Mount) -> Result<SecretMount> {
    let id = secret_id(m);
    let Some(value) = read(shared.req.secrets.get(&id), &id)? else {
        if m.required {
            return Err(BuildError::Invalid(format!(
                "secret {id:?} not found: RUN --mount=type=secret,id={id},required=true needs \
                 --secret id={id},src=FILE (or env=VAR)"
            )));
        }
        return Ok(SecretMount::default());
    };
    let mut out = SecretMount::default();
    if let Some(name) = &m.env {
        let name = if name.is_empty() { &id } else { name };
        let text = std::str::from_utf8(&value)
            .map_err(|_| BuildError::Invalid(format!("secret {id:?} is not UTF-8 text")))?;
        out.env = Some(format!("{name}={text}"));
    }
    if let Some(target) = target(m, &id) {
        let dir = shared.store.tmp_dir()?;
        let file = dir.path().join("secret");
        write_file(&file, &value, m)?;
        out.spec = Some(MountSpec::Bind {
            source: file,
            target,
            readonly: true,
        });
        out.dir = Some(dir);
    }
    Ok(out)
}

/// Where the file goes: `target=` (taken from `/`, as BuildKit), else `/run/secrets/<id>`
/// unless the secret goes only to an environment variable.
fn target(m: &Mount, id: &str) -> Option<String> {
    match m.target.as_deref().filter(|t| !t.is_empty()) {
        Some(t) => Some(clean_path(&format!("/{t}"))),
        None if m.env.is_some() => None,
        None => Some(format!("/run/secrets/{id}")),
    }
}

/// The secret's bytes; `None` when no `--secret` has this id or its variable is unset.
fn read(source: Option<&SecretSource>, id: &str) -> Result<Option<Vec<u8>>> {
    let too_big = || BuildError::Invalid(format!("secret {id:?} is larger than 500 KiB"));
    match source {
        None => Ok(None),
        Some(SecretSource::Env(var)) => match std::env::var_os(var) {
            None => Ok(None),
            Some(v) if v.len() as u64 > MAX_SECRET => Err(too_big()),
            Some(v) => Ok(Some(v.into_encoded_bytes())),
        },
        Some(SecretSource::File(path)) => {
            let file = std::fs::File::open(path).map_err(io_err("reading secret", path))?;
            let mut value = Vec::new();
            file.take(MAX_SECRET + 1)
                .read_to_end(&mut value)
                .map_err(io_err("reading secret", path))?;
            if value.len() as u64 > MAX_SECRET {
                return Err(too_big());
            }
            Ok(Some(value))
        }
    }
}

/// Writes the secret file, private until its owner and mode are the mount's.
fn write_file(path: &Path, value: &[u8], m: &Mount) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err("creating", path))?;
    file.write_all(value).map_err(io_err("writing", path))?;
    chown(path, Some(m.uid.unwrap_or(0)), Some(m.gid.unwrap_or(0)))
        .map_err(io_err("changing owner of", path))?;
    let mode = m.mode.unwrap_or(DEFAULT_MODE) & 0o7777;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(io_err("setting mode of", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(text: &str) -> Mount {
        Mount::parse(text, &mut |_: &str, v: &str| Ok(v.to_owned())).unwrap()
    }

    #[test]
    fn id_and_target_follow_buildkit() {
        let m = mount("type=secret,id=tok");
        assert_eq!(secret_id(&m), "tok");
        assert_eq!(target(&m, "tok").as_deref(), Some("/run/secrets/tok"));
        let m = mount("type=secret,target=etc/app/key.pem");
        assert_eq!(secret_id(&m), "key.pem");
        assert_eq!(target(&m, "key.pem").as_deref(), Some("/etc/app/key.pem"));
        let m = mount("type=secret,id=tok,env=TOKEN");
        assert_eq!(target(&m, "tok"), None);
        let m = mount("type=secret,source=npmrc");
        assert_eq!(secret_id(&m), "npmrc");
    }

    #[test]
    fn unknown_or_unset_secrets_read_as_missing() {
        assert_eq!(read(None, "x").unwrap(), None);
        let unset = SecretSource::Env("KILN_TEST_SURELY_UNSET_VAR".into());
        assert_eq!(read(Some(&unset), "x").unwrap(), None);
    }
}
