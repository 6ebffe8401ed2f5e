//! `--chown` resolution against the DESTINATION rootfs, with BuildKit's
//! rules: a user name brings its primary group, a bare number `N` means
//! `N:N`, and an explicit group (name or number) overrides either.

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

/// Resolves a `--chown` value (`user`, `user:group`, names or numbers) with
/// `dest_root`'s `/etc/passwd` and `/etc/group`.
pub fn resolve_chown(dest_root: &Path, spec: &str) -> Result<Owner> {
    if let Ok(n) = spec.parse::<u32>() {
        return Ok(Owner { uid: n, gid: n });
    }
    let user = kiln_executor::resolve_user(dest_root, spec).map_err(|source| Error::Chown {
        spec: spec.to_owned(),
        source,
    })?;
    Ok(Owner {
        uid: user.uid,
        gid: user.gid,
    })
}
