//! Helpers shared by the layer integration tests (run as root on a real
//! filesystem).
#![allow(dead_code)] // each test binary uses a different subset

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;

use rustix::fs::{FileType, Mode, Timespec, Timestamps, XattrFlags};

/// A v2 `security.capability` value granting CAP_NET_BIND_SERVICE.
pub const CAP_NET_BIND: [u8; 20] = [
    0x01, 0, 0, 0x02, 0x00, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];
pub const MTIME: i64 = 1_600_000_000;

/// A long but USTAR-splittable path and one that needs a PAX `path` record.
pub fn long_names() -> (String, String) {
    let splittable = format!("long/{}/{}", "d".repeat(110), "f".repeat(40));
    let pax = format!("long/{}", "p".repeat(200));
    (splittable, pax)
}

/// Builds an overlay-upper-like diff dir exercising every entry kind.
pub fn build_diff_dir(root: &Path) {
    let p = |rel: &str| root.join(rel);
    fs::create_dir_all(p("etc/app")).unwrap();
    fs::write(p("etc/app/config"), b"key = value\n").unwrap();
    fs::write(p("etc/app/empty"), b"").unwrap();
    fs::write(p("bin-tool"), vec![0x7f; 3000]).unwrap();
    fs::set_permissions(p("bin-tool"), fs::Permissions::from_mode(0o4755)).unwrap();
    set_xattr(&p("bin-tool"), "security.capability", &CAP_NET_BIND);
    set_xattr(&p("bin-tool"), "user.note", b"hello");
    fs::write(p("owned"), b"owned by 1234:5678").unwrap();
    rustix::fs::chown(
        p("owned"),
        Some(rustix::fs::Uid::from_raw(1234)),
        Some(rustix::fs::Gid::from_raw(5678)),
    )
    .unwrap();
    // Hard links: "hl/a" sorts before "hl/b", so "hl/a" carries the data.
    fs::create_dir(p("hl")).unwrap();
    fs::write(p("hl/b"), b"shared inode").unwrap();
    fs::hard_link(p("hl/b"), p("hl/a")).unwrap();
    symlink("../etc/app/config", p("hl/rel-link")).unwrap();
    symlink("/absolute/target", p("abs-link")).unwrap();
    let (splittable, pax) = long_names();
    for name in [&splittable, &pax] {
        fs::create_dir_all(p(name).parent().unwrap()).unwrap();
        fs::write(p(name), name.as_bytes()).unwrap();
    }
    // Overlay markers: a whiteout and an opaque directory.
    mknod(&p("gone"), FileType::CharacterDevice, 0, 0);
    fs::create_dir(p("opq")).unwrap();
    fs::write(p("opq/kept"), b"new content").unwrap();
    set_xattr(&p("opq"), "trusted.overlay.opaque", b"y");
    // Device nodes and a fifo.
    fs::create_dir(p("dev")).unwrap();
    mknod(&p("dev/null"), FileType::CharacterDevice, 1, 3);
    mknod(&p("dev/loop9"), FileType::BlockDevice, 7, 9);
    mknod(&p("dev/pipe"), FileType::Fifo, 0, 0);
    mknod(&p("dev/big-minor"), FileType::CharacterDevice, 300, 70_000);
    // Names and values that need PAX records: non-ASCII, long link target,
    // and an mtime too large for the octal field.
    fs::write(p("ünïcode-ß"), b"u").unwrap();
    symlink("t".repeat(150), p("long-target")).unwrap();
    fs::write(p("far-future"), b"f").unwrap();
    normalise_modes(root);
    set_all_mtimes(root);
    set_mtime(&p("far-future"), 10_000_000_000);
}

fn set_mtime(path: &Path, secs: i64) {
    let ts = Timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    let times = Timestamps {
        last_access: ts,
        last_modification: ts,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        path,
        &times,
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

/// Modes independent of the umask, so the tree (and its tar) is the same on
/// every machine.
fn normalise_modes(root: &Path) {
    let mut paths = Vec::new();
    collect(root, &mut paths);
    for p in paths {
        let m = fs::symlink_metadata(&p).unwrap();
        let mode = match m.mode() & 0o170000 {
            0o040000 => 0o755,
            0o120000 => continue,
            _ if p.ends_with("bin-tool") => 0o4755,
            _ => 0o644,
        };
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    }
}

pub fn set_xattr(path: &Path, name: &str, value: &[u8]) {
    rustix::fs::lsetxattr(path, name, value, XattrFlags::empty()).unwrap();
}

pub fn mknod(path: &Path, ft: FileType, major: u32, minor: u32) {
    let mode = Mode::from_raw_mode(0o644);
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        ft,
        mode,
        rustix::fs::makedev(major, minor),
    )
    .unwrap();
}

/// Gives every entry under `root` (and `root`) a fixed mtime, children first.
pub fn set_all_mtimes(root: &Path) {
    let mut paths = Vec::new();
    collect(root, &mut paths);
    paths.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    for p in paths {
        set_mtime(&p, MTIME);
    }
}

fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    out.push(dir.to_path_buf());
    for e in fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if fs::symlink_metadata(&path).unwrap().is_dir() {
            collect(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Everything observable about a tree: per relative path, type, mode,
/// owner, mtime, size, device, link target, contents and xattrs.
pub fn snapshot(root: &Path) -> BTreeMap<String, String> {
    let mut paths = Vec::new();
    collect(root, &mut paths);
    let mut out = BTreeMap::new();
    for p in paths {
        let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        out.insert(rel, describe(&p));
    }
    out
}

fn describe(p: &Path) -> String {
    let m = fs::symlink_metadata(p).unwrap();
    let ft = m.file_type();
    let detail = if ft.is_symlink() {
        format!("-> {}", fs::read_link(p).unwrap().display())
    } else if ft.is_file() {
        format!("{:?}", String::from_utf8_lossy(&fs::read(p).unwrap()))
    } else {
        String::new()
    };
    let mut xattrs = Vec::new();
    let mut names = vec![0u8; 4096];
    let n = rustix::fs::llistxattr(p, &mut names[..]).unwrap();
    for name in names[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let name = std::ffi::OsStr::from_bytes(name);
        let mut value = vec![0u8; 4096];
        let k = rustix::fs::lgetxattr(p, name, &mut value[..]).unwrap();
        xattrs.push(format!("{}={:?}", name.to_string_lossy(), &value[..k]));
    }
    format!(
        "mode={:o} uid={} gid={} mtime={} rdev={:x} nlink={} {detail} {xattrs:?}",
        m.mode(),
        m.uid(),
        m.gid(),
        m.mtime(),
        m.rdev(),
        if ft.is_dir() { 0 } else { m.nlink() },
    )
}
