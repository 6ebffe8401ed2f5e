//! COPY source selection: wildcards, not-found errors, exclusions and
//! symlinks that try to reach outside the context.

use std::fs;
use std::os::unix::fs::symlink;

use kiln_context::{Context, Error, FileKind, IgnoreMatcher, Selected};

/// A context tree:
/// a.json b.json c.txt apple banana date dir/{x,y,sub/z} secret.key
fn fixture(rules: &str) -> (tempfile::TempDir, Context) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    for f in [
        "a.json",
        "b.json",
        "c.txt",
        "apple",
        "banana",
        "date",
        "secret.key",
    ] {
        fs::write(root.join(f), f).unwrap();
    }
    fs::create_dir_all(root.join("dir/sub")).unwrap();
    for f in ["dir/x", "dir/y", "dir/sub/z"] {
        fs::write(root.join(f), f).unwrap();
    }
    let ctx = Context::dir(root, IgnoreMatcher::parse(rules).unwrap()).unwrap();
    (tmp, ctx)
}

fn names(selected: &[Selected]) -> Vec<&str> {
    selected.iter().map(|s| s.rel_path.as_str()).collect()
}

#[test]
fn wildcards_match_per_component() {
    let (_tmp, ctx) = fixture("");
    assert_eq!(names(&ctx.select("*.json").unwrap()), ["a.json", "b.json"]);
    assert_eq!(
        names(&ctx.select("dir/*").unwrap()),
        ["dir/sub", "dir/x", "dir/y"]
    );
    assert_eq!(
        names(&ctx.select("[a-c]*").unwrap()),
        ["a.json", "apple", "b.json", "banana", "c.txt"]
    );
    assert_eq!(names(&ctx.select("[^a-c]a*").unwrap()), ["date"]);
    assert_eq!(names(&ctx.select("*/sub/?").unwrap()), ["dir/sub/z"]);
    assert_eq!(names(&ctx.select("/dir/./x").unwrap()), ["dir/x"]);
}

#[test]
fn selection_reports_type() {
    let (_tmp, ctx) = fixture("");
    let dir = ctx.select("dir").unwrap();
    assert_eq!(dir.len(), 1);
    assert!(dir[0].is_dir());
    let file = ctx.select("c.txt").unwrap();
    assert_eq!(file[0].kind, FileKind::File);
    let root = ctx.select(".").unwrap();
    assert_eq!(root[0].rel_path, "");
    assert!(root[0].is_dir());
}

#[test]
fn no_match_is_buildkit_not_found() {
    let (_tmp, ctx) = fixture("");
    for pattern in [
        "missing",
        "dir/missing/*",
        "dir/*.nope",
        "c.txt/x",
        "c.txt/*",
    ] {
        match ctx.select(pattern) {
            Err(e @ Error::NotFound { .. }) => {
                assert!(e.to_string().starts_with("failed to compute cache key: "));
                assert!(e.to_string().ends_with(": not found"));
            }
            other => panic!("{pattern:?}: expected not found, got {other:?}"),
        }
    }
    assert!(matches!(
        ctx.select("[z-"),
        Err(Error::BadSourcePattern { .. })
    ));
}

/// `COPY requirements.* .` with no such file succeeds in BuildKit, copying
/// nothing (empty wildcards are allowed at the context root).
#[test]
fn empty_wildcard_at_root_selects_nothing() {
    let (_tmp, ctx) = fixture("");
    assert_eq!(ctx.select("*.nope").unwrap(), Vec::<Selected>::new());
    assert_eq!(
        ctx.select("/requirements.*").unwrap(),
        Vec::<Selected>::new()
    );
}

#[test]
fn dot_dot_cannot_escape() {
    let (_tmp, ctx) = fixture("");
    let sel = ctx.select("../../../c.txt").unwrap();
    assert_eq!(names(&sel), ["c.txt"]);
    assert!(matches!(
        ctx.select("../../etc/passwd"),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn excluded_files_are_invisible() {
    let (_tmp, ctx) = fixture("*.key\ndir\n!dir/x");
    assert!(matches!(
        ctx.select("secret.key"),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(ctx.select("dir/y"), Err(Error::NotFound { .. })));
    assert_eq!(names(&ctx.select("dir/*").unwrap()), ["dir/x"]);
    assert_eq!(ctx.select("s*").unwrap(), Vec::<Selected>::new());
    assert!(matches!(ctx.select("dir/y*"), Err(Error::NotFound { .. })));
    let walked = walk_names(&ctx, &ctx.select("dir").unwrap()[0]);
    assert_eq!(walked, ["", "x"]);
}

fn walk_names(ctx: &Context, sel: &Selected) -> Vec<String> {
    let mut seen = Vec::new();
    ctx.walk(sel, &mut |e| {
        seen.push(e.rel.clone());
        Ok(())
    })
    .unwrap();
    seen
}

/// Excluded directories walked for an exception appear only as parents of
/// what they contain.
#[test]
fn excluded_parents_appear_only_with_included_children() {
    let (_tmp, ctx) = fixture("dir\n!dir/sub/z");
    let root = &ctx.select(".").unwrap()[0];
    let walked = walk_names(&ctx, root);
    assert!(walked.contains(&"dir/sub/z".to_owned()), "{walked:?}");
    assert!(walked.contains(&"dir".to_owned()), "{walked:?}");
    assert!(!walked.contains(&"dir/x".to_owned()), "{walked:?}");
    let pos = |n: &str| walked.iter().position(|w| w == n).unwrap();
    assert!(pos("dir") < pos("dir/sub") && pos("dir/sub") < pos("dir/sub/z"));
}

/// A host file whose content the tests can recognise if it ever leaks.
fn host_secret() -> (tempfile::TempDir, std::path::PathBuf) {
    let host = tempfile::tempdir().unwrap();
    fs::create_dir(host.path().join("sub")).unwrap();
    fs::write(host.path().join("sub/secret"), "HOST-SECRET").unwrap();
    let path = host.path().join("sub/secret");
    (host, path)
}

#[test]
fn symlinks_resolve_inside_the_context_root() {
    let (host, secret) = host_secret();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    // Links that would leave the context on the host.
    symlink(&secret, root.join("leak")).unwrap();
    symlink("../../../../../../../..", root.join("up")).unwrap();
    symlink(host.path(), root.join("hostdir")).unwrap();
    // The same absolute path, recreated inside the context with other data.
    let inside = root.join(secret.strip_prefix("/").unwrap());
    fs::create_dir_all(inside.parent().unwrap()).unwrap();
    fs::write(&inside, "CONTEXT-COPY").unwrap();
    let ctx = Context::dir(root, IgnoreMatcher::empty()).unwrap();

    let leak = &ctx.select("leak").unwrap()[0];
    assert_eq!(leak.rel_path, "leak");
    assert_eq!(leak.kind, FileKind::File);
    assert_eq!(read_selected(&ctx, leak), "CONTEXT-COPY");

    let via_dir = &ctx.select("hostdir/sub/secret").unwrap()[0];
    assert_eq!(read_selected(&ctx, via_dir), "CONTEXT-COPY");

    // `up` resolves to the context root itself.
    let up = &ctx.select("up").unwrap()[0];
    assert_eq!(up.resolved, "");
    assert!(up.is_dir());
    let through_up = ctx.select(&format!("up{}", secret.display())).unwrap();
    assert_eq!(read_selected(&ctx, &through_up[0]), "CONTEXT-COPY");
}

#[test]
fn dangling_outside_links_are_not_found() {
    let (_host, secret) = host_secret();
    let tmp = tempfile::tempdir().unwrap();
    symlink(&secret, tmp.path().join("leak")).unwrap();
    symlink("/etc/passwd", tmp.path().join("passwd")).unwrap();
    let ctx = Context::dir(tmp.path(), IgnoreMatcher::empty()).unwrap();
    assert!(matches!(ctx.select("leak"), Err(Error::NotFound { .. })));
    assert!(matches!(ctx.select("passwd"), Err(Error::NotFound { .. })));
}

#[test]
fn links_inside_copied_directories_stay_links() {
    let (_host, secret) = host_secret();
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir(tmp.path().join("src")).unwrap();
    symlink(&secret, tmp.path().join("src/leak")).unwrap();
    let ctx = Context::dir(tmp.path(), IgnoreMatcher::empty()).unwrap();
    let mut kinds = Vec::new();
    let mut targets = Vec::new();
    ctx.walk(&ctx.select("src").unwrap()[0], &mut |e| {
        kinds.push((e.rel.clone(), e.kind));
        if e.kind == FileKind::Symlink {
            targets.push(ctx.read_link(e)?);
            // Opening it must not follow the link to the host file.
            assert!(ctx.open(e).is_err());
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(
        kinds,
        [
            (String::new(), FileKind::Dir),
            ("leak".to_owned(), FileKind::Symlink)
        ]
    );
    assert_eq!(targets, [secret.to_str().unwrap()]);
}

/// Reads a selected file through the context, as a copier would.
fn read_selected(ctx: &Context, sel: &Selected) -> String {
    let mut content = None;
    ctx.walk(sel, &mut |e| {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut ctx.open(e)?, &mut text).unwrap();
        content = Some(text);
        Ok(())
    })
    .unwrap();
    content.unwrap()
}

/// As with BuildKit, ignoring the Dockerfile and `.dockerignore` hides them
/// from COPY, while the ignore rules themselves are still read.
#[test]
fn ignored_build_files_are_read_but_not_copyable() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    fs::write(
        tmp.path().join(".dockerignore"),
        "Dockerfile\n.dockerignore\n",
    )
    .unwrap();
    fs::write(tmp.path().join("app"), "app").unwrap();
    let matcher = IgnoreMatcher::from_context(tmp.path(), &tmp.path().join("Dockerfile")).unwrap();
    let ctx = Context::dir(tmp.path(), matcher).unwrap();
    assert!(matches!(
        ctx.select("Dockerfile"),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        ctx.select(".dockerignore"),
        Err(Error::NotFound { .. })
    ));
    let everything = ctx.select(".").unwrap();
    assert_eq!(walk_names(&ctx, &everything[0]), ["", "app"]);
}
