//! COPY and ADD: sources (paths or heredoc bodies), destination and their flags.

use crate::ast::{Node, Word};
use crate::{Error, Result};

use super::chmod::Chmod;
use super::flags::{self, Flags, Kind};
use super::types::*;
use super::{args_error, spanned};

pub fn copy(node: &Node) -> Result<Copy> {
    need_destination(node, "COPY")?;
    let spec = [
        ("exclude", Kind::Strings),
        ("parents", Kind::Bool),
        ("chown", Kind::String),
        ("from", Kind::String),
        ("chmod", Kind::String),
        ("link", Kind::Bool),
    ];
    let flags = flags::parse(&node.flags, &spec)?;
    Ok(Copy {
        transfer: transfer(node, &flags, "COPY")?,
        from: flags.string("from"),
        source: None,
        parents: flags.bool("parents").unwrap_or(false),
    })
}

pub fn add(node: &Node) -> Result<Add> {
    need_destination(node, "ADD")?;
    let spec = [
        ("exclude", Kind::Strings),
        ("chown", Kind::String),
        ("chmod", Kind::String),
        ("link", Kind::Bool),
        ("keep-git-dir", Kind::Bool),
        ("checksum", Kind::String),
        ("unpack", Kind::Bool),
    ];
    let flags = flags::parse(&node.flags, &spec)?;
    Ok(Add {
        transfer: transfer(node, &flags, "ADD")?,
        checksum: flags.string("checksum"),
        keep_git_dir: flags.bool("keep-git-dir").unwrap_or(false),
        unpack: flags.bool("unpack"),
    })
}

fn need_destination(node: &Node, name: &str) -> Result<()> {
    if node.args.len() < 2 {
        let msg = format!(
            "{name} requires at least two arguments, but only one was provided. Destination could not be determined"
        );
        return Err(args_error(node, msg));
    }
    Ok(())
}

fn transfer(node: &Node, flags: &Flags, name: &str) -> Result<Transfer> {
    let (dest, sources) = node
        .args
        .split_last()
        .ok_or_else(|| args_error(node, "missing destination"))?;
    if heredoc_name(&dest.value).is_some() {
        return Err(Error::new(
            format!("{name} cannot accept a heredoc as a destination"),
            dest.span,
        ));
    }
    let (inline, paths): (Vec<&Word>, Vec<&Word>) = sources
        .iter()
        .partition(|w| heredoc_name(&w.value).is_some());
    Ok(Transfer {
        sources: paths.into_iter().map(spanned).collect(),
        inline_sources: inline.into_iter().map(|w| inline_source(node, w)).collect(),
        dest: spanned(dest),
        chown: flags.string("chown"),
        chmod: flags.string("chmod").map(unexpanded_chmod).transpose()?,
        link: flags.bool("link").unwrap_or(false),
        excludes: flags.strings("exclude"),
        json: node.json,
    })
}

/// Parses `--chmod` now when it has no variables; otherwise the stages layer does after expansion.
fn unexpanded_chmod(flag: Spanned<String>) -> Result<Typed<Chmod>> {
    let value = if flag.value.contains('$') {
        None
    } else {
        Some(Chmod::parse(&flag.value).map_err(|m| Error::new(m, flag.span))?)
    };
    Ok(Typed {
        text: flag.value,
        span: flag.span,
        value,
    })
}

/// The heredoc a source word refers to: its body becomes a file named after the delimiter.
fn inline_source(node: &Node, word: &Word) -> InlineSource {
    let (name, quoted) = heredoc_name(&word.value).unwrap_or_default();
    let body = node.heredocs.iter().find(|h| h.name == name);
    InlineSource {
        content: body.map(|h| h.content.clone()).unwrap_or_default(),
        expand: body.map_or(!quoted, |h| h.expand),
        path: name,
        span: body.map_or(word.span, |h| h.span),
    }
}

/// `[n]<<[-]NAME` (NAME possibly quoted): the delimiter and whether it was quoted.
pub(crate) fn heredoc_name(word: &str) -> Option<(String, bool)> {
    let rest = word
        .trim_start_matches(|c: char| c.is_ascii_digit())
        .strip_prefix("<<")?;
    let rest = rest.strip_prefix('-').unwrap_or(rest);
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    let unquoted = ['"', '\'']
        .iter()
        .find_map(|q| rest.strip_prefix(*q).and_then(|r| r.strip_suffix(*q)))
        .filter(|_| rest.len() >= 2);
    Some(match unquoted {
        Some(name) => (name.to_owned(), true),
        None => (rest.to_owned(), false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heredoc_words() {
        assert_eq!(heredoc_name("<<EOF"), Some(("EOF".into(), false)));
        assert_eq!(heredoc_name("<<-EOF"), Some(("EOF".into(), false)));
        assert_eq!(heredoc_name("<<'EOF'"), Some(("EOF".into(), true)));
        assert_eq!(heredoc_name("3<<\"x\""), Some(("x".into(), true)));
        assert_eq!(heredoc_name("<<"), None);
        assert_eq!(heredoc_name("file.txt"), None);
        assert_eq!(heredoc_name("<<a<b"), None);
    }
}
