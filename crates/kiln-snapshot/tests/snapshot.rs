//! Real mounts in temp dirs: these tests need root and fail when it is missing.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use kiln_snapshot::{CopySnapshotter, OverlaySnapshotter, Snapshotter, detect};
use nix::sys::stat::{Mode, SFlag, UtimensatFlags, mknod, utimensat};
use nix::sys::time::TimeSpec;

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "snapshot tests mount filesystems and must run as root"
    );
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn whiteout(path: &Path) {
    mknod(path, SFlag::S_IFCHR, Mode::empty(), 0).unwrap();
}

fn opaque(dir: &Path) {
    xattr_set(dir, "trusted.overlay.opaque", b"y");
}

fn xattr_set(path: &Path, name: &str, value: &[u8]) {
    let p = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    // SAFETY: valid C strings and a live slice.
    let rc = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(rc, 0, "setxattr {name} on {}", path.display());
}

fn is_opaque(dir: &Path) -> bool {
    let p = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
    let n = std::ffi::CString::new("trusted.overlay.opaque").unwrap();
    let mut buf = [0u8; 4];
    // SAFETY: valid C strings and a live buffer of the given length.
    let len =
        unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    len == 1 && buf[0] == b'y'
}

/// Two lowers: `base` at the bottom, `top` above it with a whiteout and an opaque dir.
fn make_lowers(root: &Path) -> Vec<PathBuf> {
    let base = root.join("base");
    write(&base.join("a.txt"), "a1");
    write(&base.join("keep.txt"), "keep");
    write(&base.join("keep2.txt"), "keep2");
    write(&base.join("dir1/f1"), "x");
    write(&base.join("dir1/f2"), "y");
    write(&base.join("dir2/sub/g"), "g");
    write(&base.join("dir3/h"), "h");
    write(&base.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n");
    symlink("a.txt", base.join("link")).unwrap();
    write(&base.join("file-to-dir"), "f");
    write(&base.join("dir-to-file/x"), "x");
    let top = root.join("top");
    write(&top.join("a.txt"), "a2");
    fs::create_dir_all(top.join("dir1")).unwrap();
    whiteout(&top.join("dir1/f2"));
    write(&top.join("newdir/n"), "n");
    write(&top.join("dir3/h2"), "h2");
    opaque(&top.join("dir3"));
    vec![base, top]
}

/// The step: every kind of change a RUN can make.
fn mutate(rootfs: &Path) {
    assert_eq!(fs::read_to_string(rootfs.join("a.txt")).unwrap(), "a2");
    assert!(
        !rootfs.join("dir1/f2").exists(),
        "whiteout in the top lower hides dir1/f2"
    );
    assert!(
        !rootfs.join("dir3/h").exists(),
        "opaque dir3 hides the base's dir3/h"
    );
    write(&rootfs.join("new.txt"), "new");
    xattr_set(&rootfs.join("new.txt"), "user.origin", b"step");
    fs::write(rootfs.join("keep.txt"), "keep, edited").unwrap();
    fs::remove_file(rootfs.join("a.txt")).unwrap();
    fs::remove_file(rootfs.join("dir1/f1")).unwrap();
    fs::remove_dir_all(rootfs.join("dir2")).unwrap();
    write(&rootfs.join("dir2/z"), "z");
    write(&rootfs.join("newdir2/deep/file"), "deep");
    fs::set_permissions(rootfs.join("dir3/h2"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::remove_file(rootfs.join("link")).unwrap();
    write(&rootfs.join("link/inside"), "i");
    fs::rename(rootfs.join("keep2.txt"), rootfs.join("renamed.txt")).unwrap();
    fs::remove_file(rootfs.join("file-to-dir")).unwrap();
    write(&rootfs.join("file-to-dir/inside"), "now a dir");
    fs::remove_dir_all(rootfs.join("dir-to-file")).unwrap();
    write(&rootfs.join("dir-to-file"), "now a file");
    stub_and_restore(&rootfs.join("etc"));
}

/// Creates and removes a file in `dir`, then restores its times, as a mountpoint stub does.
fn stub_and_restore(dir: &Path) {
    let before = fs::symlink_metadata(dir).unwrap();
    write(&dir.join("hosts"), "");
    fs::remove_file(dir.join("hosts")).unwrap();
    let atime = TimeSpec::new(before.atime(), before.atime_nsec());
    let mtime = TimeSpec::new(before.mtime(), before.mtime_nsec());
    utimensat(None, dir, &atime, &mtime, UtimensatFlags::NoFollowSymlink).unwrap();
}

#[derive(Debug, PartialEq, Eq)]
enum Entry {
    File {
        mode: u32,
        text: String,
    },
    Dir {
        mode: u32,
        opaque: bool,
    },
    /// Any xattr names other than the opaque marker, listed after the entry itself.
    Xattrs(Vec<String>),
    Symlink(PathBuf),
    Whiteout,
}

/// Everything in `root` except timestamps, keyed by relative path.
fn summarize(root: &Path) -> BTreeMap<String, Entry> {
    let mut out = BTreeMap::new();
    summarize_into(root, root, &mut out);
    out
}

fn summarize_into(root: &Path, dir: &Path, out: &mut BTreeMap<String, Entry>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = fs::symlink_metadata(&path).unwrap();
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let mode = meta.mode() & 0o7777;
        let ft = meta.file_type();
        let value = if ft.is_char_device() && meta.rdev() == 0 {
            Entry::Whiteout
        } else if ft.is_symlink() {
            Entry::Symlink(fs::read_link(&path).unwrap())
        } else if ft.is_dir() {
            summarize_into(root, &path, out);
            Entry::Dir {
                mode,
                opaque: is_opaque(&path),
            }
        } else {
            Entry::File {
                mode,
                text: fs::read_to_string(&path).unwrap(),
            }
        };
        let names: Vec<String> = xattr_names(&path)
            .into_iter()
            .filter(|n| n != "trusted.overlay.opaque")
            .collect();
        if !names.is_empty() {
            out.insert(format!("{rel} xattrs"), Entry::Xattrs(names));
        }
        out.insert(rel, value);
    }
}

fn xattr_names(path: &Path) -> Vec<String> {
    let p = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let mut buf = vec![0u8; 4096];
    // SAFETY: valid C string and a live buffer of the given length.
    let len = unsafe { libc::llistxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    assert!(len >= 0, "listxattr {}", path.display());
    buf.truncate(len as usize);
    let mut names: Vec<String> = buf
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    names.sort();
    names
}

fn run_scenario(snapshotter: &dyn Snapshotter) -> BTreeMap<String, Entry> {
    let tmp = tempfile::tempdir().unwrap();
    let lowers = make_lowers(tmp.path());
    let snap = snapshotter
        .prepare(&lowers, &tmp.path().join("step"))
        .unwrap();
    mutate(snap.rootfs());
    let upper = snap.finish().unwrap();
    assert_eq!(upper, tmp.path().join("step/upper"));
    summarize(&upper)
}

fn file(text: &str) -> Entry {
    Entry::File {
        mode: 0o644,
        text: text.into(),
    }
}

fn dir(opaque: bool) -> Entry {
    Entry::Dir {
        mode: 0o755,
        opaque,
    }
}

#[test]
fn overlay_upper_records_every_change_in_overlay_form() {
    require_root();
    let got = run_scenario(&OverlaySnapshotter);
    let expected: BTreeMap<String, Entry> = [
        ("a.txt", Entry::Whiteout),
        ("dir1", dir(false)),
        ("dir1/f1", Entry::Whiteout),
        ("dir2", dir(true)),
        ("dir2/z", file("z")),
        ("dir-to-file", file("now a file")),
        ("dir3", dir(false)),
        (
            "dir3/h2",
            Entry::File {
                mode: 0o700,
                text: "h2".into(),
            },
        ),
        ("file-to-dir", dir(true)),
        ("file-to-dir/inside", file("now a dir")),
        ("keep.txt", file("keep, edited")),
        ("keep2.txt", Entry::Whiteout),
        ("link", dir(true)),
        ("link/inside", file("i")),
        ("new.txt", file("new")),
        ("new.txt xattrs", Entry::Xattrs(vec!["user.origin".into()])),
        ("newdir2", dir(false)),
        ("newdir2/deep", dir(false)),
        ("newdir2/deep/file", file("deep")),
        ("renamed.txt", file("keep2")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(got, expected);
}

#[test]
fn copy_snapshotter_produces_the_same_upper_as_overlay() {
    require_root();
    let overlay = run_scenario(&OverlaySnapshotter);
    let copy = run_scenario(&CopySnapshotter);
    assert_eq!(copy, overlay);
}

#[test]
fn no_lowers_means_the_rootfs_is_the_upper_dir() {
    require_root();
    for snapshotter in [&OverlaySnapshotter as &dyn Snapshotter, &CopySnapshotter] {
        let tmp = tempfile::tempdir().unwrap();
        let snap = snapshotter.prepare(&[], &tmp.path().join("step")).unwrap();
        assert_eq!(snap.rootfs(), snap.upper());
        write(&snap.rootfs().join("hello"), "hi");
        let upper = snap.finish().unwrap();
        assert_eq!(
            summarize(&upper),
            [("hello".to_string(), file("hi"))].into_iter().collect()
        );
    }
}

#[test]
fn overlay_mounts_a_deep_stack_of_long_paths() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let long = tmp
        .path()
        .join("a-rather-long-directory-name-to-blow-the-option-page".repeat(2));
    let lowers: Vec<PathBuf> = (0..120)
        .map(|i| {
            let layer = long.join(format!("layer-number-{i:04}"));
            write(&layer.join(format!("f{i}")), &i.to_string());
            write(&layer.join("shared"), &i.to_string());
            layer
        })
        .collect();
    let snap = OverlaySnapshotter
        .prepare(&lowers, &tmp.path().join("step"))
        .unwrap();
    assert_eq!(fs::read_to_string(snap.rootfs().join("f0")).unwrap(), "0");
    assert_eq!(
        fs::read_to_string(snap.rootfs().join("shared")).unwrap(),
        "119",
        "last lower is the top"
    );
    snap.finish().unwrap();
}

#[test]
fn dropping_an_active_overlay_unmounts_it() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let lowers = make_lowers(tmp.path());
    let rootfs = {
        let snap = OverlaySnapshotter
            .prepare(&lowers, &tmp.path().join("step"))
            .unwrap();
        assert!(snap.rootfs().join("a.txt").exists());
        snap.rootfs().to_path_buf()
    };
    assert!(
        !rootfs.join("a.txt").exists(),
        "the overlay is still mounted after drop"
    );
}

#[test]
fn detect_picks_overlay_where_it_mounts() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    assert_eq!(detect(tmp.path()).name(), "overlay");
    assert_eq!(
        fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "the probe leaves nothing behind"
    );
}

#[test]
fn detect_probes_only_when_first_used() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("probe");
    let snapshotter = detect(&work);
    assert!(!work.exists(), "detect alone must not probe");
    let lower = tmp.path().join("lower");
    write(&lower.join("a.txt"), "a");
    let snap = snapshotter
        .prepare(&[lower], &tmp.path().join("step"))
        .unwrap();
    assert!(snap.rootfs().join("a.txt").exists());
    snap.finish().unwrap();
    assert!(
        !work.exists(),
        "a mount that works settles it without a probe"
    );
    assert_eq!(snapshotter.name(), "overlay");
}

#[test]
fn detect_copies_when_the_first_overlay_cannot_mount() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let lower = tmp.path().join("lower");
    write(&lower.join("a.txt"), "a");
    // overlayfs refuses another overlayfs as its upper filesystem.
    let outer = OverlaySnapshotter
        .prepare(std::slice::from_ref(&lower), &tmp.path().join("outer"))
        .unwrap();
    let snapshotter = detect(&outer.rootfs().join("state"));
    let step = outer.rootfs().join("step");
    let snap = snapshotter.prepare(&[lower], &step).unwrap();
    assert_eq!(snapshotter.name(), "copy");
    fs::write(snap.rootfs().join("b.txt"), "b").unwrap();
    let upper = snap.finish().unwrap();
    assert_eq!(fs::read_to_string(upper.join("b.txt")).unwrap(), "b");
    assert!(
        !upper.join("a.txt").exists(),
        "only the change is in the upper dir"
    );
    outer.finish().unwrap();
}

/// `volatile` spares every step's unmount a sync of the whole upper filesystem (Linux 5.10+).
#[test]
fn overlay_mounts_are_volatile() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let lower = tmp.path().join("lower");
    fs::create_dir(&lower).unwrap();
    let snap = OverlaySnapshotter
        .prepare(&[lower], &tmp.path().join("step"))
        .unwrap();
    let rootfs = snap.rootfs().to_str().unwrap().to_string();
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = mountinfo
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(rootfs.as_str()))
        .expect("the rootfs is in mountinfo");
    assert!(line.contains("volatile"), "not volatile: {line}");
    snap.finish().unwrap();
}

#[test]
fn detect_falls_back_to_copying_on_an_overlay() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let lower = tmp.path().join("lower");
    fs::create_dir(&lower).unwrap();
    // overlayfs refuses another overlayfs as its upper filesystem.
    let outer = OverlaySnapshotter
        .prepare(&[lower], &tmp.path().join("outer"))
        .unwrap();
    assert_eq!(detect(&outer.rootfs().join("state")).name(), "copy");
    outer.finish().unwrap();
}
