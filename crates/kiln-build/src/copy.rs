//! COPY and ADD through `kiln-fileop`: sources from the context (with `.dockerignore`) or from
//! a stage's or image's files, heredoc files, BuildKit's destination and ownership rules.

use kiln_dockerfile::instructions::{Add, Copy, Source, Transfer};
use kiln_fileop::{CopyRequest, Kind, MkfileRequest};

use crate::cache::{KeyBuilder, source_id};
use crate::error::Result;
use crate::metadata;
use crate::mounts::SourceView;
use crate::stage::StageRun;

/// The instruction being run.
#[derive(Clone, Copy)]
pub(crate) enum Op<'a> {
    Copy(&'a Copy),
    Add(&'a Add),
}

/// COPY or ADD as a layer-making step.
pub(crate) fn copy(st: &mut StageRun<'_, '_>, op: Op<'_>) -> Result<()> {
    let (keyword, t, source, parents, kind) = match op {
        Op::Copy(c) => (
            "COPY",
            &c.transfer,
            c.source.as_ref(),
            c.parents,
            Kind::Copy,
        ),
        Op::Add(a) => {
            let kind = Kind::Add {
                unpack: a.unpack.unwrap_or(true),
                checksum: a.checksum.as_ref().map(|c| c.value.clone()),
            };
            ("ADD", &a.transfer, None, false, kind)
        }
    };
    let workdir = metadata::runtime(st.builder.config())
        .working_dir()
        .clone()
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into());
    let sources: Vec<String> = t.sources.iter().map(|s| s.value.clone()).collect();
    let shown: Vec<String> = sources
        .iter()
        .cloned()
        .chain(t.inline_sources.iter().map(|i| format!("<<{}", i.path)))
        .collect();
    let dest = t.dest.value.clone();
    let history = format!("{keyword} {} {dest} # buildkit", shown.join(" "));
    let text = format!(
        "{keyword} {}{} {dest}",
        from_flag(st, source),
        shown.join(" ")
    );
    let chown = t.chown.as_ref().map(|c| c.value.clone());
    let chmod = t.chmod.as_ref().and_then(|c| c.value.clone());
    let exclude: Vec<String> = t.excludes.iter().map(|e| e.value.clone()).collect();
    st.step(text, |run, _| {
        let shared = run.shared;
        let key = key(run, op, source, &kind, &workdir)?;
        run.fs_step(key, history, |rootfs| {
            let view = SourceView::open(shared, source)?;
            for inline in &t.inline_sources {
                kiln_fileop::mkfile(&MkfileRequest {
                    dest_root: rootfs,
                    workdir: &workdir,
                    dest: &dest,
                    name: &inline.path,
                    content: inline.content.as_bytes(),
                    chown: chown.as_deref(),
                    chmod: chmod.as_ref(),
                })?;
            }
            if sources.is_empty() {
                return Ok(());
            }
            let source = if view.is_context() {
                kiln_fileop::Source::Context(&shared.context)
            } else {
                kiln_fileop::Source::Rootfs(view.root())
            };
            kiln_fileop::copy(&CopyRequest {
                source,
                sources: sources.clone(),
                dest_root: rootfs,
                workdir: workdir.clone(),
                dest: dest.clone(),
                chown: chown.clone(),
                chmod: chmod.clone(),
                exclude: exclude.clone(),
                parents,
                kind: kind.clone(),
            })?;
            Ok(())
        })
    })
}

/// The step's cache key (see [`crate::cache`]); `None` when a source is remote or cannot be
/// selected, so the step runs (and reports the error, if any).
fn key(
    run: &StageRun<'_, '_>,
    op: Op<'_>,
    source: Option<&Source>,
    kind: &Kind,
    workdir: &str,
) -> Result<Option<String>> {
    let (keyword, t, parents, keep_git_dir): (_, &Transfer, _, _) = match op {
        Op::Copy(c) => ("copy", &c.transfer, c.parents, false),
        Op::Add(a) => ("add", &a.transfer, false, a.keep_git_dir),
    };
    let sources: Vec<String> = t.sources.iter().map(|s| s.value.clone()).collect();
    if sources.iter().any(|s| s.contains("://")) {
        return Ok(None);
    }
    let Some(id) = source_id(run.shared, source, &sources)? else {
        return Ok(None);
    };
    let inline: Vec<&str> = t
        .inline_sources
        .iter()
        .flat_map(|i| [i.path.as_str(), i.content.as_str()])
        .collect();
    let excludes: Vec<&str> = t.excludes.iter().map(|e| e.value.as_str()).collect();
    let mut k = KeyBuilder::new(&run.key, keyword);
    k.list(&sources)
        .list(&inline)
        .field(&t.dest.value)
        .field(workdir)
        .field(t.chown.as_ref().map_or("", |c| c.value.as_str()))
        .field(&format!("{:?}", t.chmod.as_ref().map(|c| &c.value)))
        .field(&format!(
            "link={} parents={parents} git={keep_git_dir}",
            t.link
        ))
        .list(&excludes)
        .field(&format!("{kind:?}"))
        .field(&id);
    Ok(Some(k.finish()))
}

/// `--from=<stage or image> ` for the progress line; empty for the context.
fn from_flag(st: &StageRun<'_, '_>, source: Option<&Source>) -> String {
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
