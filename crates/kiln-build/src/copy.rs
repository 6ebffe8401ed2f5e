//! COPY and ADD of local files: sources from the context (with `.dockerignore`) or from a
//! stage's or image's files, placed in the step's rootfs with BuildKit's destination rules.
//!
//! Kept behind [`copy`] and [`mkdir_all`] so the step engine can switch to `kiln-fileop` when it
//! lands. Not handled yet: wildcards in `--from` sources, heredoc sources, `--exclude`,
//! `--parents`, ADD's URL, git and archive sources.

use std::fs::{self, File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt, lchown};
use std::path::{Path, PathBuf};

use kiln_context::FileKind;
use kiln_dockerfile::instructions::{Chmod, Source, Transfer};
use kiln_executor::resolve_in_root;

use crate::error::{BuildError, Result, io_err};
use crate::metadata::{self, clean_path};
use crate::mounts::SourceView;
use crate::stage::StageRun;

/// One entry under a selected source.
struct Item {
    /// Path below the selected source (`""` for the source itself).
    rel: String,
    host: PathBuf,
    meta: Metadata,
}

/// One selected source: its name at the destination and its entries, parents first.
struct Picked {
    name: String,
    is_dir: bool,
    items: Vec<Item>,
}

/// How copied entries are owned and moded.
struct Attrs {
    /// `--chown` resolved, else `None`: context files become 0:0, stage files keep theirs.
    owner: Option<(u32, u32)>,
    from_context: bool,
    chmod: Option<Chmod>,
}

/// COPY/ADD as a layer-making step; `keyword` is `COPY` or `ADD`.
pub(crate) fn copy(
    st: &mut StageRun<'_, '_>,
    t: &Transfer,
    source: Option<&Source>,
    keyword: &str,
) -> Result<()> {
    if !t.inline_sources.is_empty() || !t.excludes.is_empty() {
        return Err(BuildError::Unsupported(format!(
            "{keyword} with heredoc sources or --exclude"
        )));
    }
    let cwd = metadata::runtime(st.builder.config())
        .working_dir()
        .clone()
        .unwrap_or_default();
    let raw = t.dest.value.as_str();
    let dest = if raw.starts_with('/') {
        clean_path(raw)
    } else {
        clean_path(&format!("{cwd}/{raw}"))
    };
    let mut dir_intent = raw.ends_with('/') || raw == "." || raw.ends_with("/.");
    let sources: Vec<String> = t.sources.iter().map(|s| s.value.clone()).collect();
    let history = format!("{keyword} {} {raw} # buildkit", sources.join(" "));
    let from = t_from(source, st);
    let text = format!("{keyword} {from}{} {raw}", sources.join(" "));
    let chown = t.chown.as_ref().map(|c| c.value.clone());
    let chmod = t.chmod.as_ref().and_then(|c| c.value.clone());
    st.step(text, |run, _| {
        let view = SourceView::open(run.shared, source)?;
        let picked = pick(run, &view, &sources)?;
        if picked.len() > 1 {
            if sources.len() > 1 && !dir_intent {
                return Err(BuildError::Invalid(
                    "When using COPY with more than one source file, the destination must be a directory and end with a /".into(),
                ));
            }
            dir_intent = true;
        }
        run.fs_step(history, |rootfs| {
            let owner = match &chown {
                Some(c) => {
                    let u = kiln_executor::resolve_user(rootfs, c)?;
                    Some((u.uid, u.gid))
                }
                None => None,
            };
            let attrs = Attrs {
                owner,
                from_context: view.is_context(),
                chmod,
            };
            place(rootfs, &picked, &dest, dir_intent, &attrs)
        })
    })
}

fn t_from(source: Option<&Source>, st: &StageRun<'_, '_>) -> String {
    match source {
        None => String::new(),
        Some(Source::Image(name)) => format!("--from={name} "),
        Some(Source::Stage(i)) => {
            let name = st
                .shared
                .df
                .stages
                .get(*i)
                .map_or_else(|| i.to_string(), |s| s.display_name());
            format!("--from={name} ")
        }
    }
}

/// Selects every source pattern.
fn pick(run: &StageRun<'_, '_>, view: &SourceView, sources: &[String]) -> Result<Vec<Picked>> {
    let mut out = Vec::new();
    for pattern in sources {
        if view.is_context() {
            for sel in run.shared.context.select(pattern)? {
                out.push(pick_context(run, &sel)?);
            }
        } else {
            out.push(pick_view(view, pattern)?);
        }
    }
    Ok(out)
}

fn pick_context(run: &StageRun<'_, '_>, sel: &kiln_context::Selected) -> Result<Picked> {
    let ctx = &run.shared.context;
    let mut items = Vec::new();
    ctx.walk(sel, &mut |e| {
        items.push(Item {
            rel: e.rel.clone(),
            host: ctx.root().join(&e.context_path),
            meta: e.metadata.clone(),
        });
        Ok(())
    })?;
    Ok(Picked {
        name: base_name(&sel.rel_path),
        is_dir: sel.kind == FileKind::Dir,
        items,
    })
}

/// A literal path in a stage's or image's files (wildcards are not supported there yet).
fn pick_view(view: &SourceView, pattern: &str) -> Result<Picked> {
    if pattern.contains(['*', '?', '[']) {
        return Err(BuildError::Unsupported(format!(
            "wildcards in COPY --from sources ({pattern})"
        )));
    }
    let cleaned = clean_path(&format!("/{pattern}"));
    let host = resolve_in_root(view.root(), &cleaned)?;
    let meta = fs::symlink_metadata(&host)
        .map_err(|_| BuildError::Invalid(format!("\"{cleaned}\": not found")))?;
    let is_dir = meta.is_dir();
    let mut items = vec![Item {
        rel: String::new(),
        host: host.clone(),
        meta,
    }];
    if is_dir {
        walk_dir(&host, &mut items)?;
    }
    Ok(Picked {
        name: base_name(&cleaned),
        is_dir,
        items,
    })
}

/// Every entry below `root`, depth-first, names in byte order, symlinks never followed.
fn walk_dir(root: &Path, items: &mut Vec<Item>) -> Result<()> {
    let mut stack = vec![String::new()];
    while let Some(rel) = stack.pop() {
        let dir = if rel.is_empty() {
            root.to_path_buf()
        } else {
            root.join(&rel)
        };
        let mut names: Vec<_> = fs::read_dir(&dir)
            .map_err(io_err("reading", &dir))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()
            .map_err(io_err("reading", &dir))?;
        names.sort();
        let mut subdirs = Vec::new();
        for name in names {
            let name = name.to_string_lossy().into_owned();
            let child = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let host = root.join(&child);
            let meta = fs::symlink_metadata(&host).map_err(io_err("reading", &host))?;
            if meta.is_dir() {
                subdirs.push(child.clone());
            }
            items.push(Item {
                rel: child,
                host,
                meta,
            });
        }
        stack.extend(subdirs.into_iter().rev());
    }
    Ok(())
}

fn base_name(path: &str) -> String {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Places every picked source at `dest` inside `rootfs`.
fn place(
    rootfs: &Path,
    picked: &[Picked],
    dest: &str,
    dir_intent: bool,
    attrs: &Attrs,
) -> Result<()> {
    for p in picked {
        let target = if p.is_dir {
            dest.to_string()
        } else if dir_intent || resolve_in_root(rootfs, dest)?.is_dir() {
            clean_path(&format!("{dest}/{}", p.name))
        } else {
            dest.to_string()
        };
        for item in &p.items {
            let path = if item.rel.is_empty() {
                target.clone()
            } else {
                clean_path(&format!("{target}/{}", item.rel))
            };
            place_item(rootfs, &path, item, attrs)?;
        }
    }
    Ok(())
}

/// Creates one entry at container path `path`, its missing parents first.
fn place_item(rootfs: &Path, path: &str, item: &Item, attrs: &Attrs) -> Result<()> {
    let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
    let parent = if parent.is_empty() { "/" } else { parent };
    let (puid, pgid) = attrs.owner.unwrap_or((0, 0));
    mkdir_all(rootfs, parent, puid, pgid)?;
    let host_parent = resolve_in_root(rootfs, parent)?;
    if name.is_empty() {
        return Ok(()); // the root directory itself: never replaced
    }
    let host = host_parent.join(name);
    let (uid, gid) = match attrs.owner {
        Some(o) => o,
        None if attrs.from_context => (0, 0),
        None => (item.meta.uid(), item.meta.gid()),
    };
    let ft = item.meta.file_type();
    let mut mode = item.meta.mode() & 0o7777;
    if let Some(chmod) = &attrs.chmod {
        mode = chmod.apply(mode, ft.is_dir());
    }
    let existing = fs::symlink_metadata(&host).ok();
    if ft.is_dir() {
        if existing.as_ref().is_some_and(Metadata::is_dir) {
            return Ok(());
        }
        remove(&host, existing.as_ref())?;
        fs::create_dir(&host).map_err(io_err("creating", &host))?;
        lchown(&host, Some(uid), Some(gid)).map_err(io_err("changing owner of", &host))?;
        fs::set_permissions(&host, fs::Permissions::from_mode(mode))
            .map_err(io_err("setting mode of", &host))?;
        return Ok(());
    }
    remove(&host, existing.as_ref())?;
    if ft.is_symlink() {
        let link = fs::read_link(&item.host).map_err(io_err("reading link", &item.host))?;
        std::os::unix::fs::symlink(&link, &host).map_err(io_err("creating", &host))?;
        lchown(&host, Some(uid), Some(gid)).map_err(io_err("changing owner of", &host))?;
    } else if ft.is_file() {
        copy_file(&item.host, &host, uid, gid, mode)?;
    } else {
        return Err(BuildError::Unsupported(format!(
            "copying special file {}",
            item.host.display()
        )));
    }
    let mtime = filetime::FileTime::from_last_modification_time(&item.meta);
    filetime::set_symlink_file_times(&host, mtime, mtime).map_err(io_err("setting times of", &host))
}

/// Removes what is at `host` (never following a symlink) so a new entry can take its place.
fn remove(host: &Path, existing: Option<&Metadata>) -> Result<()> {
    match existing {
        None => Ok(()),
        Some(m) if m.is_dir() => fs::remove_dir_all(host).map_err(io_err("removing", host)),
        Some(_) => fs::remove_file(host).map_err(io_err("removing", host)),
    }
}

fn copy_file(src: &Path, dst: &Path, uid: u32, gid: u32, mode: u32) -> Result<()> {
    let mut input = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(src)
        .map_err(io_err("opening", src))?;
    let mut output = File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dst)
        .map_err(io_err("creating", dst))?;
    io::copy(&mut input, &mut output).map_err(io_err("writing", dst))?;
    std::os::unix::fs::fchown(&output, Some(uid), Some(gid))
        .map_err(io_err("changing owner of", dst))?;
    output
        .set_permissions(fs::Permissions::from_mode(mode))
        .map_err(io_err("setting mode of", dst))
}

/// Creates container directory `dir` and its missing parents (mode 0755, owned by uid:gid),
/// resolving each existing component inside `rootfs`.
pub(crate) fn mkdir_all(rootfs: &Path, dir: &str, uid: u32, gid: u32) -> Result<()> {
    let mut current = String::new();
    for part in dir.split('/').filter(|p| !p.is_empty()) {
        current.push('/');
        current.push_str(part);
        let host = resolve_in_root(rootfs, &current)?;
        match fs::metadata(&host) {
            Ok(m) if m.is_dir() => continue,
            Ok(_) => {
                return Err(BuildError::Invalid(format!("{current} is not a directory")));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("reading", &host)(e)),
        }
        fs::create_dir(&host).map_err(io_err("creating", &host))?;
        lchown(&host, Some(uid), Some(gid)).map_err(io_err("changing owner of", &host))?;
        fs::set_permissions(&host, fs::Permissions::from_mode(0o755))
            .map_err(io_err("setting mode of", &host))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_names() {
        assert_eq!(base_name("src/"), "src");
        assert_eq!(base_name("/out/hello"), "hello");
        assert_eq!(base_name("a.txt"), "a.txt");
    }

    #[test]
    fn mkdir_all_creates_parents_inside_root() {
        let root = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/", root.path().join("escape")).unwrap();
        mkdir_all(root.path(), "/escape/kiln-test-dir/x", 0, 0).unwrap();
        assert!(root.path().join("kiln-test-dir/x").is_dir());
        assert!(!Path::new("/kiln-test-dir").exists());
    }
}
