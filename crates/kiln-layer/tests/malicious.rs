//! Hostile layer tars, built with the `tar` crate's raw header API: nothing
//! may be written, linked or deleted outside the destination.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use kiln_layer::{Error, UnpackOptions, WhiteoutMode, unpack_layer};
use tar::{EntryType, Header};

/// Appends an entry whose name and link name are copied verbatim.
fn raw(b: &mut tar::Builder<Vec<u8>>, name: &str, kind: EntryType, link: &str, data: &[u8]) {
    let mut h = Header::new_gnu();
    let old = h.as_old_mut();
    old.name[..name.len()].copy_from_slice(name.as_bytes());
    old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_entry_type(kind);
    h.set_mode(0o755);
    h.set_size(data.len() as u64);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

fn tar_of(entries: &[(&str, EntryType, &str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, link, data) in entries {
        raw(&mut b, name, *kind, link, data);
    }
    b.into_inner().unwrap()
}

/// A destination nested a few levels inside a scratch dir, plus a "host"
/// directory outside it holding a victim file.
struct Sandbox {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    dest: PathBuf,
    host: PathBuf,
}

fn sandbox() -> Sandbox {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().to_path_buf();
    let dest = base.join("a/b/dest");
    let host = base.join("host");
    fs::create_dir_all(&dest).unwrap();
    fs::create_dir_all(&host).unwrap();
    fs::write(host.join("victim"), b"original").unwrap();
    Sandbox {
        _tmp: tmp,
        base,
        dest,
        host,
    }
}

impl Sandbox {
    fn unpack(
        &self,
        tar: &[u8],
        whiteouts: WhiteoutMode,
    ) -> kiln_layer::Result<kiln_layer::UnpackStats> {
        unpack_layer(tar, &self.dest, &UnpackOptions { whiteouts })
    }

    fn assert_host_untouched(&self) {
        let names: Vec<_> = fs::read_dir(&self.host)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["victim"], "host dir changed");
        assert_eq!(fs::read(self.host.join("victim")).unwrap(), b"original");
        assert_eq!(fs::metadata(self.host.join("victim")).unwrap().nlink(), 1);
    }

    /// The host path as an absolute path string.
    fn host_str(&self) -> String {
        self.host.to_str().unwrap().to_owned()
    }
}

#[test]
fn dotdot_paths_are_rejected() {
    let sb = sandbox();
    let tar = tar_of(&[("../../etc/x", EntryType::Regular, "", b"evil")]);
    let err = sb.unpack(&tar, WhiteoutMode::Apply).unwrap_err();
    assert!(
        matches!(&err, Error::Unsafe { path, .. } if path == "../../etc/x"),
        "{err}"
    );
    assert!(!sb.base.join("a/etc").exists());
    assert!(!sb.base.join("etc").exists());
}

#[test]
fn absolute_paths_stay_inside_dest() {
    let sb = sandbox();
    let abs = format!("{}/abs-file", sb.host_str());
    let tar = tar_of(&[(&abs, EntryType::Regular, "", b"contained")]);
    sb.unpack(&tar, WhiteoutMode::Apply).unwrap();
    let inside = sb.dest.join(abs.trim_start_matches('/'));
    assert_eq!(fs::read(inside).unwrap(), b"contained");
    sb.assert_host_untouched();
}

#[test]
fn writing_through_an_absolute_symlink_stays_inside() {
    let sb = sandbox();
    let host = sb.host_str();
    // Without the target inside dest, resolution fails...
    let tar = tar_of(&[
        ("a", EntryType::Symlink, &host, b""),
        ("a/pwned", EntryType::Regular, "", b"evil"),
    ]);
    let err = sb.unpack(&tar, WhiteoutMode::Apply).unwrap_err();
    assert!(
        matches!(&err, Error::Entry { path, .. } if path == "a/pwned"),
        "{err}"
    );
    sb.assert_host_untouched();
    // ...and with it, the symlink resolves to dest's copy of that path.
    let inner_dir = format!("{}/", host.trim_start_matches('/'));
    let tar = tar_of(&[
        (&inner_dir, EntryType::Directory, "", b""),
        ("b", EntryType::Symlink, &host, b""),
        ("b/pwned", EntryType::Regular, "", b"evil"),
    ]);
    sb.unpack(&tar, WhiteoutMode::Apply).unwrap();
    assert_eq!(
        fs::read(sb.dest.join(&inner_dir).join("pwned")).unwrap(),
        b"evil"
    );
    sb.assert_host_untouched();
}

#[test]
fn writing_through_a_climbing_relative_symlink_stays_inside() {
    let sb = sandbox();
    let climb = format!(
        "{}{}",
        "../".repeat(20),
        sb.host_str().trim_start_matches('/')
    );
    let tar = tar_of(&[
        ("up", EntryType::Symlink, &climb, b""),
        ("up/pwned", EntryType::Regular, "", b"evil"),
        ("dot", EntryType::Symlink, "../../..", b""),
        ("dot/escaped", EntryType::Regular, "", b"clamped"),
    ]);
    let result = sb.unpack(&tar, WhiteoutMode::Apply);
    assert!(result.is_err(), "up/pwned has no target inside dest");
    sb.assert_host_untouched();
    let tar = tar_of(&[
        ("dot", EntryType::Symlink, "../../..", b""),
        ("dot/escaped", EntryType::Regular, "", b"clamped"),
    ]);
    sb.unpack(&tar, WhiteoutMode::Apply).unwrap();
    assert_eq!(fs::read(sb.dest.join("escaped")).unwrap(), b"clamped");
    assert!(!sb.base.join("escaped").exists() && !sb.base.join("a/escaped").exists());
}

#[test]
fn replacing_a_symlink_does_not_write_its_target() {
    let sb = sandbox();
    let victim = format!("{}/victim", sb.host_str());
    let tar = tar_of(&[
        ("f", EntryType::Symlink, &victim, b""),
        ("f", EntryType::Regular, "", b"evil"),
    ]);
    sb.unpack(&tar, WhiteoutMode::Apply).unwrap();
    assert_eq!(fs::read(sb.dest.join("f")).unwrap(), b"evil");
    assert!(fs::symlink_metadata(sb.dest.join("f")).unwrap().is_file());
    sb.assert_host_untouched();
}

#[test]
fn hardlinks_cannot_reach_host_files() {
    let sb = sandbox();
    let victim = format!("{}/victim", sb.host_str());
    let passwd_links = fs::metadata("/etc/passwd").unwrap().nlink();
    for (target, unsafe_) in [
        ("/etc/passwd", false),
        (victim.as_str(), false),
        ("../../../../etc/passwd", true),
    ] {
        let tar = tar_of(&[("stolen", EntryType::Link, target, b"")]);
        let err = sb.unpack(&tar, WhiteoutMode::Apply).unwrap_err();
        assert_eq!(
            matches!(err, Error::Unsafe { .. }),
            unsafe_,
            "{target}: {err}"
        );
        assert!(err.to_string().contains("stolen"), "{err}");
        assert!(fs::symlink_metadata(sb.dest.join("stolen")).is_err());
    }
    // Through a symlinked directory, too.
    let tar = tar_of(&[
        ("etcl", EntryType::Symlink, "/etc", b""),
        ("stolen", EntryType::Link, "etcl/passwd", b""),
    ]);
    assert!(sb.unpack(&tar, WhiteoutMode::Apply).is_err());
    assert!(fs::symlink_metadata(sb.dest.join("stolen")).is_err());
    assert_eq!(fs::metadata("/etc/passwd").unwrap().nlink(), passwd_links);
    sb.assert_host_untouched();
}

#[test]
fn whiteouts_cannot_delete_host_files() {
    let sb = sandbox();
    let host = sb.host_str();
    for mode in [WhiteoutMode::Apply, WhiteoutMode::Overlay] {
        let tar = tar_of(&[
            ("s", EntryType::Symlink, &host, b""),
            ("s/.wh.victim", EntryType::Regular, "", b""),
            ("s/.wh..wh..opq", EntryType::Regular, "", b""),
        ]);
        let _ = sb.unpack(&tar, mode);
        sb.assert_host_untouched();
        let tar = tar_of(&[("../.wh.host", EntryType::Regular, "", b"")]);
        assert!(matches!(sb.unpack(&tar, mode), Err(Error::Unsafe { .. })));
        let tar = tar_of(&[("x/.wh...", EntryType::Regular, "", b"")]);
        assert!(matches!(sb.unpack(&tar, mode), Err(Error::Unsafe { .. })));
        assert!(sb.host.exists());
        sb.assert_host_untouched();
    }
}

#[test]
fn forged_overlay_xattrs_are_dropped() {
    let sb = sandbox();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = Header::new_ustar();
    h.set_entry_type(EntryType::Directory);
    h.set_path("d/").unwrap();
    h.set_mode(0o755);
    h.set_size(0);
    h.set_cksum();
    b.append_pax_extensions([
        ("SCHILY.xattr.trusted.overlay.opaque", &b"y"[..]),
        ("SCHILY.xattr.user.ok", &b"1"[..]),
    ])
    .unwrap();
    b.append(&h, &[][..]).unwrap();
    let tar = b.into_inner().unwrap();
    sb.unpack(&tar, WhiteoutMode::Overlay).unwrap();
    let d = sb.dest.join("d");
    let mut buf = [0u8; 8];
    assert!(rustix::fs::lgetxattr(&d, "trusted.overlay.opaque", &mut buf[..]).is_err());
    assert_eq!(
        rustix::fs::lgetxattr(&d, "user.ok", &mut buf[..]).unwrap(),
        1
    );
}

#[test]
fn unsupported_entry_types_are_typed_errors() {
    let sb = sandbox();
    fs::write(sb.dest.join("weird"), b"lower").unwrap();
    let tar = tar_of(&[("weird", EntryType::new(b'Z'), "", b"")]);
    let err = sb.unpack(&tar, WhiteoutMode::Apply).unwrap_err();
    assert!(
        matches!(&err, Error::Unsupported { path, kind: 'Z' } if path == "weird"),
        "{err}"
    );
    // Rejected before anything at that path was replaced.
    assert_eq!(fs::read(sb.dest.join("weird")).unwrap(), b"lower");
}
