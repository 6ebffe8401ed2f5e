//! Hostile inputs through whole builds: base layers with `../`, absolute, symlinked and
//! hardlinked entries; contexts, stages and archives whose symlinks point out of their root;
//! WORKDIR, `--chown` destinations and bind mounts through such links. Each build either fails
//! with a clear error or keeps everything inside the rootfs (checked from inside the container
//! by a RUN), and a canary directory on the host, the target of every link, stays unchanged.

mod common;

use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::{Path, PathBuf};

use common::{assert_clean, import_busybox, request, temp_store};
use kiln_build::{BuildError, BuildResult};
use kiln_store::Store;
use tar::{EntryType, Header};

/// What the canary's victim file holds; no image may ever contain it.
const SECRET: &str = "canary secret: kiln read the host\n";
/// Content of the context's `.dockerignore`d files; no image may contain it either.
const IGNORED: &[u8] = b"ignored by .dockerignore: never sent\n";
/// Enough `..` to climb from any rootfs or context to the host's `/`.
const CLIMB: &str = "../../../../../../../../../../../../../../../..";

/// A host directory every hostile link points at, with its state when created.
struct Canary {
    dir: tempfile::TempDir,
    before: Vec<String>,
}

impl Canary {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("kiln-canary-")
            .tempdir_in("/var/tmp")
            .expect("canary dir");
        fs::write(dir.path().join("victim"), SECRET).unwrap();
        fs::create_dir(dir.path().join("d")).unwrap();
        fs::write(dir.path().join("d/inner"), SECRET).unwrap();
        fs::write(
            dir.path().join("passwd"),
            "evil:x:4242:4242::/:/bin/sh\nroot:x:0:0::/:/bin/sh\n",
        )
        .unwrap();
        fs::write(dir.path().join("group"), "evil:x:4242:\n").unwrap();
        let before = listing(dir.path());
        Self { dir, before }
    }

    /// The canary's absolute path, as a link target.
    fn path(&self) -> String {
        self.dir.path().to_string_lossy().into_owned()
    }

    /// The same place reached by climbing with `..` from wherever the link is.
    fn climbing(&self) -> String {
        format!("{CLIMB}{}", self.path())
    }

    fn assert_untouched(&self) {
        assert_eq!(
            listing(self.dir.path()),
            self.before,
            "the host canary {} changed",
            self.path()
        );
    }
}

/// Every path below `dir` with type, mode, owner, link count and content or link target.
fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = fs::symlink_metadata(&p).unwrap();
        let what = if m.is_dir() {
            stack.extend(fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            "dir".to_string()
        } else if m.file_type().is_symlink() {
            format!("-> {}", fs::read_link(&p).unwrap().display())
        } else {
            format!("{:?}", fs::read(&p).unwrap())
        };
        let rel = p.strip_prefix(dir).unwrap().display().to_string();
        out.push(format!(
            "{rel} {:o} {}:{} n{} {what}",
            m.mode(),
            m.uid(),
            m.gid(),
            m.nlink()
        ));
    }
    out.sort();
    out
}

/// Appends an entry whose name and link name are written verbatim (`..` and `/` included).
/// Owner fields stay blank, as in hand-made archives: they read as 0.
fn raw(b: &mut tar::Builder<Vec<u8>>, name: &str, kind: EntryType, link: &str, data: &[u8]) {
    let mut h = Header::new_gnu();
    let old = h.as_old_mut();
    old.name[..name.len()].copy_from_slice(name.as_bytes());
    old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_entry_type(kind);
    h.set_mode(if kind == EntryType::Directory {
        0o755
    } else {
        0o644
    });
    h.set_size(data.len() as u64);
    h.set_mtime(0);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

type Raw<'a> = (&'a str, EntryType, &'a str, &'a [u8]);

fn tar_of(entries: &[Raw<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, link, data) in entries {
        raw(&mut b, name, *kind, link, data);
    }
    b.into_inner().unwrap()
}

/// Imports the busybox rootfs with `extra` entries appended to its tar as image `name`, the
/// way `kiln import` makes a base image.
fn hostile_base(store: &Store, name: &str, extra: &[Raw<'_>]) {
    let busybox =
        fs::File::open(Path::new(common::BASES).join("busybox.tar")).unwrap_or_else(|e| {
            panic!("busybox.tar missing ({e}): run /work/shared/conformance/make-bases.sh")
        });
    let mut b = tar::Builder::new(Vec::new());
    let mut archive = tar::Archive::new(busybox);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let header = entry.header().clone();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        b.append(&header, &data[..]).unwrap();
    }
    for (n, kind, link, data) in extra {
        raw(&mut b, n, *kind, link, data);
    }
    let tar = b.into_inner().unwrap();
    let changes = ["CMD [\"sh\"]".to_string(), "ENV PATH=/usr/bin:/bin".into()];
    kiln_build::import_rootfs(store, &tar[..], Some(name), &changes).expect("import hostile base");
}

/// A context directory holding `Dockerfile` plus `files` (name, content).
fn context(dir: &Path, dockerfile: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let ctx = dir.join("context");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    for (name, data) in files {
        let path = ctx.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, data).unwrap();
    }
    ctx
}

fn build(store: &Store, ctx: &Path) -> Result<BuildResult, BuildError> {
    let (result, _) = common::build(store, &request(ctx, None, "t/safety:1"));
    assert_clean(store);
    result
}

/// Builds and expects success, with the error in the panic message otherwise.
fn build_ok(store: &Store, ctx: &Path) -> BuildResult {
    build(store, ctx).unwrap_or_else(|e| panic!("build failed: {e}"))
}

/// Builds and expects a failure whose message contains `wanted`.
fn build_err(store: &Store, ctx: &Path, wanted: &str) {
    match build(store, ctx) {
        Ok(_) => panic!("the build must fail ({wanted})"),
        Err(e) => assert!(
            e.to_string().contains(wanted),
            "error {e:?} does not say {wanted:?}"
        ),
    }
}

/// Rewrites the context's Dockerfile (one store and context serve several builds).
fn dockerfile(ctx: &Path, text: &str) {
    fs::write(ctx.join("Dockerfile"), text).unwrap();
}

/// Whether any layer of the image holds `needle` in a regular file.
fn layers_contain(store: &Store, result: &BuildResult, needle: &[u8]) -> bool {
    let layers = store.image_layers(&result.image.id).unwrap();
    layers.iter().any(|l| {
        let blob = store.content().open_blob(&l.digest).unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(blob));
        archive.entries().unwrap().any(|e| {
            let mut data = Vec::new();
            e.unwrap().read_to_end(&mut data).unwrap();
            data.windows(needle.len()).any(|w| w == needle)
        })
    })
}

#[test]
fn base_layer_dotdot_entries_fail_the_build() {
    let canary = Canary::new();
    let (tmp, store) = temp_store();
    let name = format!("{CLIMB}{}/dotdot", canary.path());
    hostile_base(
        &store,
        "evil/dotdot:1",
        &[(&name, EntryType::Regular, "", b"x")],
    );
    let ctx = context(tmp.path(), "FROM evil/dotdot:1\nRUN true\n", &[]);
    build_err(&store, &ctx, "climbs out of the layer root");
    canary.assert_untouched();
}

#[test]
fn base_layer_absolute_and_symlinked_entries_stay_in_the_rootfs() {
    let canary = Canary::new();
    let c = canary.path();
    let (tmp, store) = temp_store();
    let (abs, through, climbed) = (
        format!("{c}/abs"),
        "esc/through".to_string(),
        "up/climbed".to_string(),
    );
    let climbing = canary.climbing();
    hostile_base(
        &store,
        "evil/links:1",
        &[
            (&abs, EntryType::Regular, "", b"abs\n"),
            ("esc", EntryType::Symlink, &c, b""),
            (&through, EntryType::Regular, "", b"through\n"),
            ("up", EntryType::Symlink, &climbing, b""),
            (&climbed, EntryType::Regular, "", b"climbed\n"),
            ("esc/victim", EntryType::Regular, "", b"replaced\n"),
            // A whiteout through the link hides the rootfs's copy, never the host's file.
            ("esc/d", EntryType::Directory, "", b""),
            ("esc/d/inner", EntryType::Regular, "", b"inner\n"),
            ("esc/.wh.d", EntryType::Regular, "", b""),
        ],
    );
    import_busybox(&store);
    let ctx = context(
        tmp.path(),
        &format!(
            "FROM evil/links:1\n\
             RUN test -L /esc && test -L /up && test ! -e {c}/d \
             && test \"$(cat {c}/abs {c}/through {c}/climbed {c}/victim)\" = \"$(printf 'abs\\nthrough\\nclimbed\\nreplaced')\"\n\
             FROM lab/busybox:1\n\
             COPY --from=evil/links:1 /esc/through /up/climbed /from-image/\n\
             RUN --mount=type=bind,from=evil/links:1,source=/esc,target=/m cat /m/victim > /bound\n\
             RUN test \"$(cat /from-image/through /from-image/climbed /bound)\" = \"$(printf 'through\\nclimbed\\nreplaced')\"\n"
        ),
        &[],
    );
    build_ok(&store, &ctx);
    canary.assert_untouched();
}

#[test]
fn base_layer_hardlinks_to_host_paths_fail_the_build() {
    let canary = Canary::new();
    let c = canary.path();
    let (tmp, store) = temp_store();
    let absolute = format!("{c}/victim");
    let climbing = format!("{}/victim", canary.climbing());
    let ctx = context(tmp.path(), "", &[]);
    let cases: [(&[Raw<'_>], &str); 3] = [
        (&[("hl", EntryType::Link, &absolute, b"")], "No such file"),
        (
            &[("hl", EntryType::Link, &climbing, b"")],
            "hardlink target climbs out",
        ),
        (
            &[
                ("esc", EntryType::Symlink, &c, b""),
                ("hl", EntryType::Link, "esc/victim", b""),
            ],
            "No such file",
        ),
    ];
    for (i, (entries, wanted)) in cases.iter().enumerate() {
        let name = format!("evil/hardlink:{i}");
        hostile_base(&store, &name, entries);
        dockerfile(&ctx, &format!("FROM {name}\nRUN true\n"));
        build_err(&store, &ctx, wanted);
        canary.assert_untouched();
    }
}

/// A context with links out of it (absolute, climbing, inside a subdirectory) and a link to an
/// ignored file; `files` and the Dockerfile are added by the caller.
fn linked_context(dir: &Path, canary: &Canary) -> PathBuf {
    let ctx = context(
        dir,
        "",
        &[
            ("a.txt", b"a\n"),
            ("secret.txt", IGNORED),
            ("hidden/f", IGNORED),
            (
                ".dockerignore",
                b"secret.txt\nhidden\n!../\n!../../etc/passwd\n!/etc/shadow\n",
            ),
        ],
    );
    let c = canary.path();
    symlink(&c, ctx.join("out")).unwrap();
    symlink(format!("{c}/victim"), ctx.join("outfile")).unwrap();
    symlink(format!("{}/victim", canary.climbing()), ctx.join("relout")).unwrap();
    fs::create_dir(ctx.join("sub")).unwrap();
    symlink(&c, ctx.join("sub/inner-out")).unwrap();
    symlink("secret.txt", ctx.join("alias")).unwrap();
    symlink("hidden", ctx.join("alias-dir")).unwrap();
    ctx
}

#[test]
fn context_links_out_of_the_context_are_never_followed_out() {
    let canary = Canary::new();
    let (tmp, store) = temp_store();
    import_busybox(&store);
    let ctx = linked_context(tmp.path(), &canary);
    for (source, shown) in [
        ("outfile", "outfile"),
        ("relout", "relout"),
        ("out/victim", "out/victim"),
        ("out/", "out"),
        ("sub/inner-out/d/inner", "sub/inner-out/d/inner"),
        // .dockerignore'd files stay out of reach through links to them.
        ("alias", "alias"),
        ("alias-dir/f", "alias-dir/f"),
    ] {
        dockerfile(&ctx, &format!("FROM lab/busybox:1\nCOPY {source} /x\n"));
        build_err(&store, &ctx, &format!("\"/{shown}\": not found"));
    }
    let c = canary.path();
    dockerfile(
        &ctx,
        &format!(
            "FROM lab/busybox:1\nCOPY . /ctx/\nCOPY sub /sub/\nCOPY a.txt /out-dest/\n\
             RUN test \"$(readlink /ctx/out)\" = {c} && test \"$(readlink /sub/inner-out)\" = {c} \
             && test \"$(readlink /ctx/alias)\" = secret.txt && test ! -e /ctx/secret.txt \
             && test ! -e /ctx/hidden && test -f /out-dest/a.txt\n"
        ),
    );
    let before = listing(&ctx);
    let result = build_ok(&store, &ctx);
    assert!(!layers_contain(&store, &result, SECRET.as_bytes()));
    assert!(!layers_contain(&store, &result, IGNORED));
    assert_eq!(listing(&ctx), before, "the build changed the context");
    canary.assert_untouched();
}

#[test]
fn copy_from_stage_links_to_root_stay_in_the_stage() {
    let canary = Canary::new();
    let c = canary.path();
    let (tmp, store) = temp_store();
    import_busybox(&store);
    let stage = format!(
        "FROM lab/busybox:1 AS s\n\
         RUN ln -s / /rootlink && ln -s ../.. /uplink && ln -s {c} /out \
         && mkdir /d && ln -s {CLIMB} /d/deep && echo stage > /stage-only\n"
    );
    let ctx = context(tmp.path(), "", &[]);
    dockerfile(
        &ctx,
        &format!(
            "{stage}FROM lab/busybox:1\n\
             COPY --from=s /rootlink/stage-only /p1\n\
             COPY --from=s /uplink/stage-only /p2\n\
             COPY --from=s /d/deep/stage-only /p3\n\
             COPY --from=s /rootlink/../../../stage-only /p4\n\
             COPY --from=s /rootlink /whole/\n\
             COPY --from=s /uplink/etc /etc-copy/\n\
             RUN test \"$(cat /p1 /p2 /p3 /p4 /whole/stage-only)\" = \"$(printf 'stage\\nstage\\nstage\\nstage\\nstage')\" \
             && cmp /whole/etc/passwd /etc/passwd && cmp /etc-copy/group /etc/group && test -L /whole/rootlink\n"
        ),
    );
    let result = build_ok(&store, &ctx);
    // The host's passwd is not busybox's: had a link been followed on the host, it would be here.
    let host_passwd = fs::read("/etc/passwd").unwrap();
    assert!(!layers_contain(&store, &result, &host_passwd));
    // Paths that exist on the host (the canary) but not in the stage.
    for source in [
        "/out/victim".to_string(),
        "/out/".into(),
        format!("/d/deep{c}/victim"),
        format!("/rootlink{c}/d"),
        format!("/uplink/..{c}/d/inner"),
    ] {
        dockerfile(
            &ctx,
            &format!("{stage}FROM lab/busybox:1\nCOPY --from=s {source} /x\n"),
        );
        build_err(&store, &ctx, "not found");
    }
    canary.assert_untouched();
}

#[test]
fn workdir_through_links_to_root_or_outside_stays_in_the_rootfs() {
    let canary = Canary::new();
    let c = canary.path();
    let (tmp, store) = temp_store();
    import_busybox(&store);
    let climbing = canary.climbing();
    let ctx = context(
        tmp.path(),
        &format!(
            "FROM lab/busybox:1\n\
             RUN ln -s / /wroot && ln -s {c} /wout && ln -s {climbing} /wup\n\
             WORKDIR /wroot/made\nRUN touch here\n\
             WORKDIR /wout/sub\nRUN touch here\n\
             WORKDIR /wup/sub2\nRUN touch here\n\
             USER app\nWORKDIR /wout/byapp\n\
             USER root\nWORKDIR /\n\
             RUN test -f /made/here && test -f {c}/sub/here && test -f {c}/sub2/here \
             && test \"$(stat -c %u {c}/byapp)\" = 1000\n"
        ),
        &[],
    );
    build_ok(&store, &ctx);
    canary.assert_untouched();
}

#[test]
fn copy_chown_through_links_stays_in_the_rootfs() {
    let canary = Canary::new();
    let c = canary.path();
    let (tmp, store) = temp_store();
    import_busybox(&store);
    let climbing = canary.climbing();
    let ctx = context(
        tmp.path(),
        &format!(
            "FROM lab/busybox:1\n\
             RUN ln -s {c} /dst && ln -s {climbing} /dstup\n\
             COPY --chown=app a.txt /dst/\n\
             COPY --chown=app:app dir /dstup/dir/\n\
             COPY --chown=app a.txt /dst/victim\n\
             RUN ln -sf {c}/passwd /etc/passwd && ln -sf {climbing}/group /etc/group\n\
             COPY --chown=evil:evil a.txt /evil.txt\n\
             RUN test \"$(stat -c %u:%g {c}/a.txt {c}/dir/f {c}/victim /evil.txt)\" = \
             \"$(printf '1000:1000\\n1000:1000\\n1000:1000\\n0:0')\"\n"
        ),
        &[("a.txt", b"a\n"), ("dir/f", b"f\n")],
    );
    build_ok(&store, &ctx);
    // USER is resolved in the rootfs too: the host canary's user is unknown there.
    let text = fs::read_to_string(ctx.join("Dockerfile")).unwrap();
    dockerfile(&ctx, &format!("{text}USER evil\nRUN true\n"));
    build_err(&store, &ctx, "evil");
    canary.assert_untouched();
}

#[test]
fn add_archive_extraction_through_links_stays_in_the_rootfs() {
    let canary = Canary::new();
    let c = canary.path();
    let (tmp, store) = temp_store();
    import_busybox(&store);
    let climbing = canary.climbing();
    let (abs, dotdot, victim) = (
        format!("/{c}/absname"),
        format!("{climbing}/dotdot"),
        format!("{c}/victim"),
    );
    let inner = format!("{c}/");
    // The links' targets exist in the extraction directory (else the parent is dangling).
    let through = tar_of(&[
        (&inner, EntryType::Directory, "", b""),
        ("esc", EntryType::Symlink, &c, b""),
        ("esc/pwned", EntryType::Regular, "", b"p\n"),
        ("up", EntryType::Symlink, &climbing, b""),
        ("up/pwned2", EntryType::Regular, "", b"p2\n"),
        (&abs, EntryType::Regular, "", b"abs\n"),
        ("esc/victim", EntryType::Regular, "", b"replaced\n"),
    ]);
    let breakout = tar_of(&[(&dotdot, EntryType::Regular, "", b"x")]);
    let dangling = tar_of(&[
        ("esc", EntryType::Symlink, &c, b""),
        ("esc/pwned", EntryType::Regular, "", b"p\n"),
    ]);
    let hardlink = tar_of(&[("hl", EntryType::Link, &victim, b"")]);
    let ctx = context(
        tmp.path(),
        "",
        &[
            ("through.tar", &through),
            ("breakout.tar", &breakout),
            ("dangling.tar", &dangling),
            ("hardlink.tar", &hardlink),
        ],
    );
    dockerfile(
        &ctx,
        &format!(
            "FROM lab/busybox:1\nRUN ln -s {c} /dstlink\n\
             ADD through.tar /x/\nADD --chown=app through.tar /dstlink/\n\
             RUN test -L /x/esc && test \"$(cat /x/{c}/pwned /x/{c}/pwned2 /x/{c}/absname /x/{c}/victim)\" = \
             \"$(printf 'p\\np2\\nabs\\nreplaced')\" && test -f {c}/{c}/pwned && test -L {c}/esc\n"
        ),
    );
    build_ok(&store, &ctx);
    dockerfile(&ctx, "FROM lab/busybox:1\nADD breakout.tar /y/\n");
    build_err(&store, &ctx, "is outside of the destination");
    // The host has the link's target, the extraction directory does not: BuildKit fails too.
    dockerfile(&ctx, "FROM lab/busybox:1\nADD dangling.tar /d/\n");
    build_err(&store, &ctx, "a parent is a symlink to a missing path");
    dockerfile(&ctx, "FROM lab/busybox:1\nADD hardlink.tar /z/\n");
    build_err(&store, &ctx, "linking");
    canary.assert_untouched();
}

#[test]
fn bind_mount_sources_linking_out_stay_in_their_root() {
    let canary = Canary::new();
    let c = canary.path();
    let (tmp, store) = temp_store();
    import_busybox(&store);
    let ctx = linked_context(tmp.path(), &canary);
    for source in [
        "out",
        "outfile",
        "relout",
        "out/d",
        "secret.txt",
        "alias",
        "hidden",
    ] {
        dockerfile(
            &ctx,
            &format!("FROM lab/busybox:1\nRUN --mount=type=bind,source={source},target=/m ls /m\n"),
        );
        build_err(&store, &ctx, "not found");
    }
    let stage = format!("FROM lab/busybox:1 AS s\nRUN ln -s {c} /out\n");
    dockerfile(
        &ctx,
        &format!(
            "{stage}FROM lab/busybox:1\nRUN --mount=type=bind,from=s,source=/out,target=/m ls /m\n"
        ),
    );
    build_err(&store, &ctx, "not found");
    // A writable bind of the context: writes through its links land in the container, and
    // `.dockerignore`d files are not there (BuildKit never receives them).
    dockerfile(
        &ctx,
        &format!(
            "FROM lab/busybox:1\n\
             RUN --mount=type=bind,source={CLIMB},target=/m,rw \
             test -f /m/a.txt && test -L /m/out && mkdir -p {c} && mkdir -p /m/out/made && echo w > /m/out/made/f \
             && echo w > /m/outfile && test -f {c}/made/f && test -f {c}/victim \
             && test ! -e /m/secret.txt && test ! -e /m/hidden && test ! -e /m/alias\n"
        ),
    );
    let before = listing(&ctx);
    let result = build_ok(&store, &ctx);
    assert!(!layers_contain(&store, &result, SECRET.as_bytes()));
    assert_eq!(listing(&ctx), before, "the build changed the context");
    canary.assert_untouched();
}
