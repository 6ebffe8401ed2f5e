//! `docker build - < ctx.tar`: safe unpacking into a private directory.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;

use kiln_context::{Context, Error};
use tar::{EntryType, Header};

/// Appends an entry with a raw (unvalidated) name, as a hostile archive would.
fn raw_entry(
    builder: &mut tar::Builder<Vec<u8>>,
    name: &str,
    kind: EntryType,
    link: &str,
    data: &[u8],
) {
    let mut header = Header::new_ustar();
    let old = header.as_old_mut();
    old.name[..name.len()].copy_from_slice(name.as_bytes());
    old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    header.set_entry_type(kind);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(1_700_000_000);
    header.set_size(data.len() as u64);
    header.set_cksum();
    builder.append(&header, data).unwrap();
}

fn archive(entries: &[(&str, EntryType, &str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for &(name, kind, link, data) in entries {
        raw_entry(&mut builder, name, kind, link, data);
    }
    builder.into_inner().unwrap()
}

fn unsafe_reason(result: Result<Context, Error>) -> &'static str {
    match result {
        Err(Error::UnsafeTarEntry { reason, .. }) => reason,
        other => panic!("expected an unsafe-entry error, got {other:?}"),
    }
}

#[test]
fn parent_dir_entries_are_rejected() {
    let outside = tempfile::tempdir().unwrap();
    let name = "../../../../../../../../../../../..".to_owned()
        + outside.path().join("evil").to_str().unwrap();
    let tar = archive(&[
        ("ok", EntryType::Regular, "", b"x"),
        (&name, EntryType::Regular, "", b"pwned"),
    ]);
    assert_eq!(
        unsafe_reason(Context::from_tar(&tar[..], "Dockerfile")),
        "path contains `..`"
    );
    assert!(!outside.path().join("evil").exists());
    let inner = archive(&[("a/../../b", EntryType::Regular, "", b"x")]);
    assert_eq!(
        unsafe_reason(Context::from_tar(&inner[..], "Dockerfile")),
        "path contains `..`"
    );
}

#[test]
fn writing_through_a_symlink_is_rejected() {
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().to_str().unwrap().to_owned();
    let tar = archive(&[
        ("link", EntryType::Symlink, &target, b""),
        ("link/pwned", EntryType::Regular, "", b"pwned"),
    ]);
    assert_eq!(
        unsafe_reason(Context::from_tar(&tar[..], "Dockerfile")),
        "parent is not a directory"
    );
    assert!(!outside.path().join("pwned").exists());
}

#[test]
fn hard_links_cannot_point_outside() {
    let tar = archive(&[("h", EntryType::Link, "../../etc/passwd", b"")]);
    assert_eq!(
        unsafe_reason(Context::from_tar(&tar[..], "Dockerfile")),
        "path contains `..`"
    );
}

#[test]
fn valid_archive_unpacks_with_ignore_rules() {
    let tar = archive(&[
        ("/Dockerfile", EntryType::Regular, "", b"FROM scratch\n"),
        ("./.dockerignore", EntryType::Regular, "", b"**/*.log\n"),
        ("src/", EntryType::Directory, "", b""),
        ("src/main.c", EntryType::Regular, "", b"int main;"),
        ("src/debug.log", EntryType::Regular, "", b"noise"),
        ("src/alias", EntryType::Symlink, "main.c", b""),
        ("src/hard", EntryType::Link, "src/main.c", b""),
    ]);
    let ctx = Context::from_tar(&tar[..], "Dockerfile").unwrap();
    let root = ctx.root().to_path_buf();
    assert_eq!(
        std::fs::read_to_string(root.join("src/main.c")).unwrap(),
        "int main;"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("src/hard")).unwrap(),
        "int main;"
    );
    assert_eq!(
        std::fs::read_link(root.join("src/alias")).unwrap().to_str(),
        Some("main.c")
    );
    assert!(matches!(
        ctx.select("src/debug.log"),
        Err(Error::NotFound { .. })
    ));
    assert_eq!(ctx.select("src/alias").unwrap()[0].resolved, "src/main.c");
    let mode = std::fs::metadata(&root).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o755, "context root has an ordinary mode");
    let private = std::fs::metadata(root.parent().unwrap())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(private & 0o077, 0, "the enclosing temp dir is private");
    drop(ctx);
    assert!(
        !root.exists(),
        "the private directory must be removed on drop"
    );
}

#[test]
fn compressed_archives_are_detected() {
    let tar = archive(&[("f", EntryType::Regular, "", b"packed")]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    bz.write_all(&tar).unwrap();
    let mut xz = xz2::write::XzEncoder::new(Vec::new(), 1);
    xz.write_all(&tar).unwrap();
    let streams = [
        ("gzip", gz.finish().unwrap()),
        ("bzip2", bz.finish().unwrap()),
        ("xz", xz.finish().unwrap()),
        ("zstd", zstd::encode_all(&tar[..], 1).unwrap()),
    ];
    for (name, stream) in streams {
        assert_ne!(stream, tar, "{name} stream must differ from the plain tar");
        let ctx = Context::from_tar(&stream[..], "Dockerfile").unwrap();
        let content = std::fs::read_to_string(ctx.root().join("f")).unwrap();
        assert_eq!(content, "packed", "{name}");
    }
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    let short = Context::from_tar(&b"definitely not a tar archive"[..], "Dockerfile");
    assert!(matches!(short, Err(Error::Tar(_))), "{short:?}");
    let block = [0x55u8; 1024];
    let bad_block = Context::from_tar(&block[..], "Dockerfile");
    assert!(matches!(bad_block, Err(Error::Tar(_))), "{bad_block:?}");
}
