//! Checks on the expanded stages: UndefinedVar, WorkdirRelativePath, ExposeProtoCasing,
//! ExposeInvalidFormat, CopyIgnoredFile and kiln's RunRecursiveOwnership.

use kiln_context::{IgnoreMatcher, clean};

use crate::instructions::{Instruction, Spanned};
use crate::stages::{Base, Dockerfile, Expanded, Stage};

use super::quote::go_quote;
use super::rules;
use super::suggest::closest;
use super::{Hit, ownership};

/// Variables BuildKit reads itself; using them undeclared is fine.
const NON_ENV_ARGS: &[&str] = &["BUILDKIT_SBOM_SCAN_CONTEXT", "BUILDKIT_SBOM_SCAN_STAGE"];

pub(super) fn check(dockerfile: &Dockerfile, ignore: Option<&IgnoreMatcher>) -> Vec<Hit> {
    let mut hits = Vec::new();
    let mut workdir_set: Vec<bool> = Vec::with_capacity(dockerfile.stages.len());
    for stage in &dockerfile.stages {
        let inherited = match stage.base {
            Base::Stage(i) => workdir_set.get(i).copied().unwrap_or(false),
            Base::Scratch | Base::Image(_) => false,
        };
        let (workdir_hits, set) = relative_workdirs(stage, inherited);
        workdir_set.push(set);
        hits.extend(workdir_hits);
        for expanded in &stage.instructions {
            hits.extend(undefined_vars(expanded));
            hits.extend(expose(expanded));
            if let Some(matcher) = ignore {
                hits.extend(ignored_sources(expanded, matcher));
            }
        }
    }
    hits.extend(ownership::check(dockerfile));
    hits
}

/// UndefinedVar: names expansion met that nothing in scope defines, with a near name as hint.
fn undefined_vars(expanded: &Expanded) -> Vec<Hit> {
    let options: Vec<&str> = expanded.env.iter().map(|(k, _)| k.as_str()).collect();
    expanded
        .undefined_vars
        .iter()
        .filter(|name| !NON_ENV_ARGS.contains(&name.as_str()))
        .map(|name| {
            let mut msg = format!("Usage of undefined variable '${name}'");
            if let Some(best) = closest(name, options.iter().copied()) {
                msg.push_str(&format!(" (did you mean ${best}?)"));
            }
            Hit::new(rules::UNDEFINED_VAR, msg, expanded.command.span)
        })
        .collect()
}

/// WorkdirRelativePath: the first WORKDIR of a stage chain, if relative. Returns whether a
/// WORKDIR was set by the end of the stage.
fn relative_workdirs(stage: &Stage, mut set: bool) -> (Option<Hit>, bool) {
    let mut hit = None;
    for expanded in &stage.instructions {
        let Instruction::Workdir(w) = &expanded.command.instruction else {
            continue;
        };
        if !set && !w.path.value.starts_with('/') {
            let msg = format!(
                "Relative workdir {} can have unexpected results if the base image changes",
                go_quote(&w.path.value)
            );
            hit = Some(Hit::new(
                rules::WORKDIR_RELATIVE_PATH,
                msg,
                expanded.command.span,
            ));
        }
        set = true;
    }
    (hit, set)
}

/// ExposeProtoCasing and ExposeInvalidFormat on each expanded port.
fn expose(expanded: &Expanded) -> Vec<Hit> {
    let Instruction::Expose(e) = &expanded.command.instruction else {
        return Vec::new();
    };
    let span = expanded.command.span;
    let mut hits = Vec::new();
    for Spanned { value: port, .. } in &e.ports {
        let parts: Vec<&str> = port.split(':').collect();
        let (mapped, container) = match parts.as_slice() {
            [one] => (false, *one),
            [host, container] => (!host.is_empty(), *container),
            [ip @ .., host, container] => {
                (!ip.join(":").is_empty() || !host.is_empty(), *container)
            }
            [] => (false, ""),
        };
        let proto = container.split_once('/').map_or("", |(_, p)| p);
        if proto != proto.to_lowercase() {
            let msg =
                format!("Defined protocol '{port}' in EXPOSE instruction should be lowercase");
            hits.push(Hit::new(rules::EXPOSE_PROTO_CASING, msg, span));
        }
        if mapped {
            let msg = format!(
                "EXPOSE instruction should not define an IP address or host-port mapping, found '{port}'"
            );
            hits.push(Hit::new(rules::EXPOSE_INVALID_FORMAT, msg, span));
        }
    }
    hits
}

/// CopyIgnoredFile: a context source of COPY/ADD that `.dockerignore` excludes.
fn ignored_sources(expanded: &Expanded, matcher: &IgnoreMatcher) -> Vec<Hit> {
    let (verb, transfer) = match &expanded.command.instruction {
        Instruction::Copy(c) if c.from.is_none() => ("Copy", &c.transfer),
        Instruction::Add(a) => ("Add", &a.transfer),
        _ => return Vec::new(),
    };
    transfer
        .sources
        .iter()
        .filter(|s| verb == "Copy" || !is_remote(&s.value))
        .filter_map(|s| ignored(matcher, &s.value))
        .map(|src| {
            let msg = format!(
                "Attempting to {verb} file {} that is excluded by .dockerignore",
                go_quote(&src)
            );
            Hit::new(rules::COPY_IGNORED_FILE, msg, expanded.command.span)
        })
        .collect()
}

/// ADD sources BuildKit fetches instead of reading from the context.
fn is_remote(src: &str) -> bool {
    ["http://", "https://", "git://", "git@", "ssh://"]
        .iter()
        .any(|p| src.starts_with(p))
}

/// The cleaned source when it is excluded, as the context BuildKit receives leaves it out. The
/// context root counts only under a catch-all pattern, and an exception at or below the source
/// makes the answer unknowable, as in BuildKit.
fn ignored(matcher: &IgnoreMatcher, src: &str) -> Option<String> {
    let cleaned = clean(src);
    let path = cleaned
        .strip_prefix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(&cleaned);
    let root = path == "." || path == "/";
    if root && !root_ignored(matcher) {
        return None;
    }
    if negated_below(matcher, path) || !(root || matcher.is_excluded(path)) {
        return None;
    }
    Some(cleaned)
}

fn root_ignored(matcher: &IgnoreMatcher) -> bool {
    matcher
        .patterns()
        .any(|(text, exception)| !exception && matches!(text, "*" | "**" | "**/*"))
}

/// An exception pattern that may re-include `src` or something under it.
fn negated_below(matcher: &IgnoreMatcher, src: &str) -> bool {
    let src = if src == "." { "" } else { src };
    matcher
        .patterns()
        .filter(|&(_, exception)| exception)
        .any(|(text, _)| {
            let (prefix, wildcard) = literal_prefix(text);
            at_or_below(&prefix, src) || (wildcard && at_or_below(src, &prefix))
        })
}

/// The pattern's leading path elements before the first one with a wildcard.
fn literal_prefix(pattern: &str) -> (String, bool) {
    let elems: Vec<&str> = pattern.split('/').collect();
    match elems.iter().position(|e| e.contains(['*', '?', '['])) {
        Some(i) => (elems[..i].join("/"), true),
        None => (pattern.to_owned(), false),
    }
}

fn at_or_below(path: &str, base: &str) -> bool {
    base.is_empty() || path == base || path.strip_prefix(base).is_some_and(|r| r.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(patterns: &[&str]) -> IgnoreMatcher {
        IgnoreMatcher::from_patterns(patterns).unwrap()
    }

    #[test]
    fn ignored_source_rules() {
        let m = matcher(&["Dockerfile", "tmp/*", "!tmp/keep"]);
        assert_eq!(ignored(&m, "./Dockerfile"), Some("Dockerfile".into()));
        assert_eq!(
            ignored(&m, "tmp"),
            None,
            "an exception below keeps it unknown"
        );
        assert_eq!(ignored(&m, "src"), None);
        assert_eq!(ignored(&m, "."), None);
        assert_eq!(ignored(&matcher(&["*"]), "."), Some(".".into()));
    }
}
