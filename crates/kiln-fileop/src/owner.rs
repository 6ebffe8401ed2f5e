//! `--chown` (and WORKDIR's USER) resolution against the DESTINATION rootfs
//! with BuildKit's file-op rules, which differ from RUN's: a user name brings
//! its primary group, a bare number `N` means `N:N`, an explicit group (name
//! or number) overrides it, an empty group means 0, and names the rootfs
//! does not know silently become 0 (user) or are ignored (group).

use std::path::Path;

use crate::error::{Error, Result};

/// A numeric owner.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Owner {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

impl Owner {
    /// root:root, what BuildKit creates directories and context files as.
    pub const ROOT: Self = Self { uid: 0, gid: 0 };
}

/// Resolves `user[:group]` (names or numbers) with `dest_root`'s
/// `/etc/passwd` and `/etc/group`. Use it for `--chown` and for the owner
/// of a WORKDIR (the current USER), both of which BuildKit resolves so.
pub fn resolve_chown(dest_root: &Path, spec: &str) -> Result<Owner> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let mut owner = user_ids(dest_root, spec, user)?;
    if let Some(group) = group {
        owner.gid = group_id(dest_root, spec, group, owner.gid)?;
    }
    Ok(owner)
}

fn user_ids(dest_root: &Path, spec: &str, user: &str) -> Result<Owner> {
    if user.is_empty() {
        return Ok(Owner::ROOT);
    }
    if let Ok(n) = user.parse::<u32>() {
        return Ok(Owner { uid: n, gid: n });
    }
    match lookup(dest_root, spec, user)? {
        Some(u) => Ok(Owner {
            uid: u.uid,
            gid: u.gid,
        }),
        None => Ok(Owner::ROOT),
    }
}

fn group_id(dest_root: &Path, spec: &str, group: &str, current: u32) -> Result<u32> {
    if group.is_empty() {
        return Ok(0);
    }
    if let Ok(n) = group.parse::<u32>() {
        return Ok(n);
    }
    Ok(lookup(dest_root, spec, &format!("0:{group}"))?.map_or(current, |u| u.gid))
}

/// `resolve_user`, with an unknown name reported as `None` (and logged).
fn lookup(dest_root: &Path, spec: &str, query: &str) -> Result<Option<kiln_executor::UserSpec>> {
    match kiln_executor::resolve_user(dest_root, query) {
        Ok(u) => Ok(Some(u)),
        Err(kiln_executor::Error::UnknownUser { kind, name }) => {
            tracing::warn!(
                "--chown={spec}: no {kind} {name} in the destination rootfs, using BuildKit's fallback"
            );
            Ok(None)
        }
        Err(source) => Err(Error::Chown {
            spec: spec.to_owned(),
            source,
        }),
    }
}
