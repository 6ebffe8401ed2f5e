//! The identity of sources taken from another stage (`COPY --from=<stage>`, bind mounts
//! `from=<stage>`): a checksum of exactly the selected paths in that stage's files, so a
//! change elsewhere in the stage leaves the steps that read them cached.
//!
//! The paths are selected in the stage's merged layers as the copy itself selects them
//! ([`kiln_context::Context::select`], no `.dockerignore`), and summed like context sources:
//! names, types, modes, owners, link targets and contents, never mtimes. The sum is memoised
//! under the store root by the stage's layers (their diff IDs: exactly its files), so a stage
//! that did not change (a warm rebuild) is not read again.

use std::path::PathBuf;

use kiln_context::{Context, HashCache, IgnoreMatcher, Selected};
use kiln_dockerfile::instructions::Source;

use crate::cache::KeyBuilder;
use crate::engine::Shared;
use crate::error::{Result, io_err};
use crate::mounts::SourceView;

/// Memo directory under the store root.
const MEMO_DIR: &str = "stage-sums";

/// The checksum of what `paths` select in stage `index`; `None` when a path selects nothing
/// valid (the step then runs and reports the real error).
pub(crate) fn checksum(
    shared: &Shared<'_>,
    index: usize,
    paths: &[String],
) -> Result<Option<String>> {
    let diff_ids = shared
        .stage_output(index)?
        .builder
        .config()
        .oci
        .rootfs()
        .diff_ids()
        .clone();
    let memo = memo_path(shared, &diff_ids, paths);
    if let Some(sum) = read_memo(&memo) {
        return Ok(Some(sum));
    }
    let view = SourceView::open(shared, Some(&Source::Stage(index)))?;
    let files = Context::dir(view.root(), IgnoreMatcher::empty())?;
    let mut selected: Vec<Selected> = Vec::new();
    for p in paths {
        match files.select(p) {
            Ok(s) => selected.extend(s),
            Err(_) => return Ok(None),
        }
    }
    // Files in a mounted view get a new device number each time: a persisted stat cache
    // could never hit, so this one lives only for the sum.
    let scratch = shared.store.tmp_dir()?;
    let mut cache = HashCache::open(scratch.path().join("hashes"))?;
    let sum = files.checksum(&selected, &mut cache)?;
    write_memo(&memo, &sum)?;
    Ok(Some(sum))
}

/// Where the sum of `paths` in the layers `diff_ids` is memoised.
fn memo_path(shared: &Shared<'_>, diff_ids: &[String], paths: &[String]) -> PathBuf {
    let mut key = KeyBuilder::new("", "stage-sum");
    key.list(diff_ids).list(paths);
    shared.store.root().join(MEMO_DIR).join(key.finish())
}

/// A memoised sum; anything unreadable or malformed is a miss.
fn read_memo(path: &std::path::Path) -> Option<String> {
    let sum = std::fs::read_to_string(path).ok()?;
    let hex = sum.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(sum)
}

/// Writes a memo atomically, so a concurrent build never reads half of one.
fn write_memo(path: &std::path::Path, sum: &str) -> Result<()> {
    let Some(dir) = path.parent() else {
        return Ok(());
    };
    std::fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io_err("creating", dir))?;
    std::io::Write::write_all(&mut tmp, sum.as_bytes()).map_err(io_err("writing", path))?;
    tmp.persist(path)
        .map_err(|e| io_err("replacing", path)(e.error))?;
    Ok(())
}
