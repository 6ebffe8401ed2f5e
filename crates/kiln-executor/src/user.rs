//! `USER` resolution against the rootfs's own `/etc/passwd` and `/etc/group`, as runc's user
//! lookup (used by docker 26's BuildKit) does it: names or numbers, `user[:group]`, and
//! supplementary groups from every `/etc/group` entry that lists the user by name (only when
//! `USER` names no group).

use std::path::Path;

use crate::error::{Error, IoContext, Result};
use crate::rootpath::resolve_in_root;

/// Who the step's process runs as.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserSpec {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary group ids: the primary group first, then the `/etc/group` entries listing
    /// the user (in file order) unless `USER` named a group.
    pub additional_gids: Vec<u32>,
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// Resolves a Dockerfile `USER` value (`""` means root) inside `rootfs`.
///
/// The rootfs's files are found through in-root symlink resolution, so a link pointing at an
/// absolute path never reads the host's `/etc/passwd`. Missing files behave as empty ones.
pub fn resolve_user(rootfs: &Path, user: &str) -> Result<UserSpec> {
    let (user_part, group_part) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let passwd = read_db(rootfs, "/etc/passwd", parse_passwd)?;
    let groups = read_db(rootfs, "/etc/group", parse_group)?;
    let found = find_user(&passwd, user_part)?;
    let uid = match found {
        Some(p) => p.uid,
        None => parse_id(user_part, user)?,
    };
    let explicit = group_part.filter(|g| !g.is_empty());
    let gid = match explicit {
        Some(g) => find_group(&groups, g, user)?,
        None => found.map_or(0, |p| p.gid),
    };
    // The primary group always, and the groups listing the user only when no group is given:
    // what BuildKit 0.13 passes (`user.GetExecUser`) plus the primary group runc adds.
    let mut additional_gids = vec![gid];
    if let (None, Some(p)) = (explicit, found) {
        let member_of = groups.iter().filter(|g| g.members.contains(&p.name));
        additional_gids.extend(member_of.map(|g| g.gid).filter(|g| *g != gid));
    }
    Ok(UserSpec {
        uid,
        gid,
        additional_gids,
    })
}

/// The passwd entry for a name, or for a number when one has it; `None` for an unlisted number.
fn find_user<'a>(passwd: &'a [PasswdEntry], user: &str) -> Result<Option<&'a PasswdEntry>> {
    if user.bytes().all(|b| b.is_ascii_digit()) {
        let uid = parse_id(user, user)?;
        return Ok(passwd.iter().find(|p| p.uid == uid));
    }
    match passwd.iter().find(|p| p.name == user) {
        Some(p) => Ok(Some(p)),
        None => Err(Error::UnknownUser {
            kind: "user",
            name: user.to_string(),
        }),
    }
}

fn find_group(groups: &[GroupEntry], group: &str, spec: &str) -> Result<u32> {
    if let Some(g) = groups.iter().find(|g| g.name == group) {
        return Ok(g.gid);
    }
    if group.bytes().all(|b| b.is_ascii_digit()) {
        return parse_id(group, spec);
    }
    Err(Error::UnknownUser {
        kind: "group",
        name: group.to_string(),
    })
}

fn parse_id(text: &str, spec: &str) -> Result<u32> {
    text.parse()
        .map_err(|_| Error::InvalidUser(spec.to_string()))
}

/// Reads and parses one of the rootfs's databases; a missing file is an empty one.
fn read_db<T>(rootfs: &Path, path: &str, parse: fn(&str) -> Option<T>) -> Result<Vec<T>> {
    let host = resolve_in_root(rootfs, path)?;
    match std::fs::read(&host) {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes)
            .lines()
            .filter_map(parse)
            .collect()),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(Vec::new())
        }
        Err(e) => Err(e).at("reading", host),
    }
}

fn parse_passwd(line: &str) -> Option<PasswdEntry> {
    let mut f = line.split(':');
    let name = f.next()?.to_string();
    let _password = f.next()?;
    Some(PasswdEntry {
        name,
        uid: f.next()?.parse().ok()?,
        gid: f.next()?.parse().ok()?,
    })
}

fn parse_group(line: &str) -> Option<GroupEntry> {
    let mut f = line.split(':');
    let name = f.next()?.to_string();
    let _password = f.next()?;
    let gid = f.next()?.parse().ok()?;
    let members = f
        .next()
        .unwrap_or("")
        .split(',')
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .collect();
    Some(GroupEntry { name, gid, members })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rootfs() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("etc")).unwrap();
        std::fs::write(
            tmp.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\nbroken line\n",
        )
        .unwrap();
        std::fs::write(
            tmp.path().join("etc/group"),
            "root:x:0:\nwheel:x:10:root,app\napp:x:1000:\naudio:x:29:app\nstaff:x:50:\n",
        )
        .unwrap();
        tmp
    }

    fn spec(uid: u32, gid: u32, additional_gids: &[u32]) -> UserSpec {
        UserSpec {
            uid,
            gid,
            additional_gids: additional_gids.to_vec(),
        }
    }

    #[test]
    fn names_numbers_and_groups() {
        let r = rootfs();
        // Observed with docker 26.1.5 (BuildKit 0.13) as `id` output: the primary group, plus
        // the groups listing the user unless USER names a group.
        assert_eq!(resolve_user(r.path(), "").unwrap(), spec(0, 0, &[0, 10]));
        assert_eq!(
            resolve_user(r.path(), "app").unwrap(),
            spec(1000, 1000, &[1000, 10, 29])
        );
        assert_eq!(
            resolve_user(r.path(), "1000").unwrap(),
            spec(1000, 1000, &[1000, 10, 29])
        );
        assert_eq!(
            resolve_user(r.path(), "app:staff").unwrap(),
            spec(1000, 50, &[50])
        );
        assert_eq!(
            resolve_user(r.path(), "1000:1000").unwrap(),
            spec(1000, 1000, &[1000])
        );
        assert_eq!(resolve_user(r.path(), "4242").unwrap(), spec(4242, 0, &[0]));
        assert_eq!(
            resolve_user(r.path(), "4242:77").unwrap(),
            spec(4242, 77, &[77])
        );
    }

    #[test]
    fn unknown_names_and_garbage_are_errors() {
        let r = rootfs();
        assert!(matches!(
            resolve_user(r.path(), "nobody"),
            Err(Error::UnknownUser { kind: "user", .. })
        ));
        assert!(matches!(
            resolve_user(r.path(), "app:nogroup"),
            Err(Error::UnknownUser { kind: "group", .. })
        ));
        assert!(matches!(
            resolve_user(r.path(), "99999999999"),
            Err(Error::InvalidUser(_))
        ));
    }

    #[test]
    fn symlinks_never_lead_out_of_the_rootfs() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("passwd"), "escaped:x:7:7::/:/bin/sh\n").unwrap();
        let rootfs = tmp.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("etc")).unwrap();
        for target in [outside.join("passwd"), "../../outside/passwd".into()] {
            let link = rootfs.join("etc/passwd");
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(&target, &link).unwrap();
            assert_eq!(
                std::fs::read_to_string(&link).unwrap().len(),
                25,
                "the host would follow {target:?}"
            );
            let got = resolve_user(&rootfs, "escaped");
            assert!(
                matches!(got, Err(Error::UnknownUser { .. })),
                "{target:?} escaped: {got:?}"
            );
        }
    }
}
