//! COPY and ADD: source selection, destination rules and per-source copy.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use kiln_context::{Context, Entry, FileKind, IgnoreMatcher, Selected};
use kiln_dockerfile::instructions::Chmod;

use crate::archive;
use crate::dest::{Dest, clean_parts, mkdir_all, mkdir_parent_of};
use crate::error::{Error, IoContext, Result};
use crate::http;
use crate::owner::{Owner, resolve_chown};
use crate::place::{NewFile, place_file};
use crate::tree::{Copier, CopyStats, Plan};

/// Where COPY/ADD sources are read from.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// The build context (its `.dockerignore` applies). Owners become 0:0
    /// and xattrs are not carried, as BuildKit's context transfer does.
    Context(&'a Context),
    /// Another stage's or an image's rootfs (`--from`): owners and xattrs kept.
    Rootfs(&'a Path),
}

/// COPY, or ADD with its extra options.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Kind {
    /// COPY.
    #[default]
    Copy,
    /// ADD: archives are unpacked unless `unpack` is false; URLs downloaded.
    Add {
        /// `--unpack` (default true).
        unpack: bool,
        /// `--checksum=sha256:<hex>` for URL sources.
        checksum: Option<String>,
    },
}

/// One COPY/ADD instruction. `--link` needs nothing here: the files it
/// produces are the same, only the snapshot it starts from differs.
#[derive(Debug, Clone)]
pub struct CopyRequest<'a> {
    /// Where `sources` are read from.
    pub source: Source<'a>,
    /// Source paths or patterns as written (`/` and `..` stay in the source
    /// root); for ADD also `http(s)://` URLs.
    pub sources: Vec<String>,
    /// The step's merged rootfs, the only place written to.
    pub dest_root: &'a Path,
    /// WORKDIR, for a relative `dest`.
    pub workdir: String,
    /// The destination as written (a trailing `/` means "into this directory").
    pub dest: String,
    /// `--chown`, resolved with `dest_root`'s passwd/group.
    pub chown: Option<String>,
    /// `--chmod`.
    pub chmod: Option<Chmod>,
    /// `--exclude` patterns (`.dockerignore` syntax, relative to each source).
    pub exclude: Vec<String>,
    /// `--parents`: keep each source's path (below a `/./` pivot if any).
    pub parents: bool,
    /// COPY or ADD.
    pub kind: Kind,
}

impl<'a> CopyRequest<'a> {
    /// A plain `COPY sources... dest` run from WORKDIR `/`.
    pub fn new(source: Source<'a>, sources: &[&str], dest_root: &'a Path, dest: &str) -> Self {
        Self {
            source,
            sources: sources.iter().map(|s| (*s).to_owned()).collect(),
            dest_root,
            workdir: "/".to_owned(),
            dest: dest.to_owned(),
            chown: None,
            chmod: None,
            exclude: Vec::new(),
            parents: false,
            kind: Kind::Copy,
        }
    }
}

/// Runs a COPY/ADD onto `req.dest_root`. Sources are copied in order, each
/// on top of the previous ones; a wildcard matching nothing copies nothing
/// (BuildKit allows empty wildcards), a missing literal path is an error.
pub fn copy(req: &CopyRequest<'_>) -> Result<CopyStats> {
    if req.sources.is_empty() {
        return Err(Error::NoSources);
    }
    let opened;
    let ctx = match req.source {
        Source::Context(ctx) => ctx,
        Source::Rootfs(root) => {
            opened = Context::dir(root, IgnoreMatcher::empty())?;
            &opened
        }
    };
    let run = Run::new(req, ctx)?;
    let mut stats = CopyStats::default();
    for source in &req.sources {
        stats.add(run.source(source)?);
    }
    Ok(stats)
}

/// Everything resolved once per instruction.
struct Run<'a> {
    req: &'a CopyRequest<'a>,
    ctx: &'a Context,
    plan: Plan,
    exclude: IgnoreMatcher,
    dest: Dest,
}

impl<'a> Run<'a> {
    fn new(req: &'a CopyRequest<'a>, ctx: &'a Context) -> Result<Self> {
        let from_rootfs = matches!(req.source, Source::Rootfs(_));
        let chown = req
            .chown
            .as_deref()
            .map(|spec| resolve_chown(req.dest_root, spec))
            .transpose()?;
        Ok(Self {
            req,
            ctx,
            plan: Plan {
                chown,
                keep_owner: from_rootfs,
                xattrs: from_rootfs,
                chmod: req.chmod.clone(),
            },
            exclude: IgnoreMatcher::parse(&req.exclude.join("\n"))?,
            dest: Dest::new(&req.workdir, &req.dest),
        })
    }

    /// Owner of directories this copy creates: `--chown`'s, else root.
    fn dir_owner(&self) -> Owner {
        self.plan.chown.unwrap_or(Owner::ROOT)
    }

    fn source(&self, source: &str) -> Result<CopyStats> {
        if let Kind::Add { checksum, .. } = &self.req.kind {
            if http::is_url(source) {
                return self.url(source, checksum.as_deref());
            }
        }
        let pivot = if self.req.parents {
            pivot_depth(source)
        } else {
            0
        };
        let mut stats = CopyStats::default();
        for sel in select(self.ctx, source)? {
            let rel = strip_parts(&sel.rel_path, pivot);
            let name = if self.req.parents {
                rel.clone()
            } else {
                base_name(&sel.rel_path)
            };
            if !name.is_empty() && self.exclude.is_excluded(&name) {
                continue;
            }
            stats.add(self.selected(&sel, &rel)?);
        }
        Ok(stats)
    }

    fn selected(&self, sel: &Selected, rel: &str) -> Result<CopyStats> {
        if let Kind::Add { unpack: true, .. } = self.req.kind {
            let path = self.ctx.root().join(&sel.resolved);
            if sel.kind == FileKind::File && archive::is_archive(&path) {
                let dest = self.dest.path();
                return archive::extract(&path, self.req.dest_root, &dest, self.dir_owner());
            }
        }
        let entries = walk(self.ctx, sel)?;
        let mut copier = Copier::new(self.ctx, &self.plan);
        if self.req.parents {
            self.with_parents(&mut copier, &entries, sel, rel)?;
        } else if sel.is_dir() {
            self.dir_contents(&mut copier, &entries)?;
        } else {
            self.single(&mut copier, &entries, sel)?;
        }
        copier.finish()
    }

    /// A directory source: its contents go into `dest` (created 0755 with
    /// the copy's owner, or merged into an existing directory whose own
    /// metadata stays, as observed with BuildKit).
    fn dir_contents(&self, copier: &mut Copier<'_>, entries: &[Entry]) -> Result<()> {
        let target = kiln_executor::resolve_in_root(self.req.dest_root, &self.dest.path())?;
        match fs::symlink_metadata(&target) {
            Ok(m) if !m.is_dir() => return Err(Error::NotADirectory(target)),
            _ => mkdir_all(self.req.dest_root, &self.dest.path(), self.dir_owner())?,
        };
        self.tree(copier, entries, &target)
    }

    /// A file (or followed link) source: to `dest`, or into it when `dest`
    /// ends with `/` or is an existing directory.
    fn single(&self, copier: &mut Copier<'_>, entries: &[Entry], sel: &Selected) -> Result<()> {
        let parent = if self.dest.is_dir {
            self.dest.path()
        } else {
            self.dest.parent()
        };
        mkdir_all(self.req.dest_root, &parent, self.dir_owner())?;
        let mut target = kiln_executor::resolve_in_root(self.req.dest_root, &self.dest.path())?;
        if fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
            target.push(base_name(&sel.rel_path));
        } else {
            mkdir_parent_of(self.req.dest_root, &target, self.dir_owner())?;
        }
        match entries.first() {
            Some(entry) => copier.entry(entry, &target),
            None => Ok(()),
        }
    }

    /// `--parents`: the source lands at `dest/<rel>`; its parent directories
    /// are recreated from the source's own (mode, owner, times).
    fn with_parents(
        &self,
        copier: &mut Copier<'_>,
        entries: &[Entry],
        sel: &Selected,
        rel: &str,
    ) -> Result<()> {
        let base = mkdir_all(self.req.dest_root, &self.dest.path(), self.dir_owner())?;
        let parts = clean_parts(rel);
        let written = clean_parts(&sel.rel_path);
        let skip = written.len().saturating_sub(parts.len());
        for depth in 1..parts.len() {
            let dir = source_dir_entry(self.ctx, &written[..skip + depth].join("/"))?;
            copier.entry(&dir, &base.join(parts[..depth].join("/")))?;
        }
        let target = base.join(parts.join("/"));
        // The source itself is not the destination here: an existing
        // directory takes its metadata like any nested one.
        if let Some(top) = entries.first().filter(|e| e.kind == FileKind::Dir) {
            copier.entry(top, &target)?;
        }
        self.tree(copier, entries, &target)
    }

    /// Copies walked entries below `target` (the top entry onto `target`
    /// itself, except that an existing directory there keeps its owner and
    /// mode and only takes the source's times, as observed), honouring
    /// `--exclude` and creating excluded parents only when needed.
    fn tree(&self, copier: &mut Copier<'_>, entries: &[Entry], target: &Path) -> Result<()> {
        let mut held: BTreeMap<String, &Entry> = BTreeMap::new();
        for entry in entries {
            if entry.rel.is_empty() {
                if entry.kind == FileKind::Dir && is_real_dir(target) {
                    copier.dir_times_only(entry, target);
                } else {
                    copier.entry(entry, target)?;
                }
                continue;
            }
            if self.exclude.is_excluded(&entry.rel) {
                if entry.kind == FileKind::Dir {
                    held.insert(entry.rel.clone(), entry);
                }
                continue;
            }
            release_parents(copier, &mut held, &entry.rel, target)?;
            copier.entry(entry, &target.join(&entry.rel))?;
        }
        Ok(())
    }

    fn url(&self, url: &str, checksum: Option<&str>) -> Result<CopyStats> {
        let mut download = http::download(url, checksum)?;
        let file = NewFile {
            name: &download.name,
            owner: self.dir_owner(),
            mode: self
                .plan
                .chmod
                .as_ref()
                .map_or(0o600, |c| c.apply(0o600, false)),
            mtime: download.mtime,
        };
        place_file(self.req.dest_root, &self.dest, &file, &mut download.file)
    }
}

/// Creates held (excluded) ancestor directories of `rel`, top first.
fn release_parents(
    copier: &mut Copier<'_>,
    held: &mut BTreeMap<String, &Entry>,
    rel: &str,
    target: &Path,
) -> Result<()> {
    let mut prefix = String::new();
    for part in rel
        .split('/')
        .collect::<Vec<_>>()
        .iter()
        .rev()
        .skip(1)
        .rev()
    {
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(part);
        if let Some(dir) = held.remove(&prefix) {
            copier.entry(dir, &target.join(&prefix))?;
        }
    }
    Ok(())
}

/// Expands a pattern; a wildcard matching nothing is an empty selection.
fn select(ctx: &Context, pattern: &str) -> Result<Vec<Selected>> {
    match ctx.select(pattern) {
        Err(kiln_context::Error::NotFound { .. }) if has_wildcard(pattern) => Ok(Vec::new()),
        other => Ok(other?),
    }
}

/// BuildKit's test for a pattern (same characters `filepath.Match` treats
/// specially).
fn has_wildcard(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

/// All entries of a selected source, top first.
fn walk(ctx: &Context, sel: &Selected) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    ctx.walk(sel, &mut |e| {
        entries.push(e.clone());
        Ok(())
    })?;
    Ok(entries)
}

/// The source directory at `rel` (symlinks followed inside the root).
fn source_dir_entry(ctx: &Context, rel: &str) -> Result<Entry> {
    let host: PathBuf = kiln_executor::resolve_in_root(ctx.root(), rel)?;
    let metadata = fs::symlink_metadata(&host).at("stat", &host)?;
    let context_path = host
        .strip_prefix(ctx.root())
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Entry {
        rel: rel.to_owned(),
        context_path,
        kind: if metadata.is_dir() {
            FileKind::Dir
        } else {
            FileKind::Other
        },
        metadata,
    })
}

/// How many leading components `--parents` drops: those before a `/./`.
fn pivot_depth(pattern: &str) -> usize {
    pattern
        .find("/./")
        .map_or(0, |i| clean_parts(&pattern[..i]).len())
}

fn strip_parts(rel: &str, n: usize) -> String {
    clean_parts(rel)
        .into_iter()
        .skip(n)
        .collect::<Vec<_>>()
        .join("/")
}

fn is_real_dir(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
}

fn base_name(rel: &str) -> String {
    rel.rsplit('/').next().unwrap_or(rel).to_owned()
}
