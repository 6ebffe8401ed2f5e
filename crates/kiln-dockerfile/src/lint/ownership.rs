//! kiln's RunRecursiveOwnership: `RUN chown -R`/`chmod -R` over files an earlier COPY/ADD of the
//! same stage wrote. The RUN layer then holds a second full copy of those files only to change
//! their metadata; `COPY --chown`/`--chmod` sets it in the first place.

use crate::instructions::{CommandLine, Form, Instruction};
use crate::stages::{Base, Dockerfile, Stage};

use super::{Hit, rules};
use kiln_context::clean;

/// Where a COPY/ADD wrote, as an absolute path.
struct Written {
    path: String,
    verb: &'static str,
    line: usize,
}

/// A recursive chown/chmod found in a RUN.
struct Recursive {
    command: &'static str,
    path: String,
}

pub(super) fn check(dockerfile: &Dockerfile) -> Vec<Hit> {
    let mut workdirs: Vec<String> = Vec::with_capacity(dockerfile.stages.len());
    let mut hits = Vec::new();
    for stage in &dockerfile.stages {
        let start = match stage.base {
            Base::Stage(i) => workdirs.get(i).cloned(),
            Base::Scratch | Base::Image(_) => None,
        };
        let (stage_hits, workdir) = check_stage(stage, start.unwrap_or_else(|| "/".into()));
        hits.extend(stage_hits);
        workdirs.push(workdir);
    }
    hits
}

/// Checks one stage; returns its hits and its final working directory.
fn check_stage(stage: &Stage, mut workdir: String) -> (Vec<Hit>, String) {
    let mut written: Vec<Written> = Vec::new();
    let mut hits = Vec::new();
    for expanded in &stage.instructions {
        let command = &expanded.command;
        match &command.instruction {
            Instruction::Workdir(w) => workdir = absolute(&workdir, &w.path.value),
            Instruction::Copy(c) => written.push(Written {
                path: absolute(&workdir, &c.transfer.dest.value),
                verb: "COPY",
                line: command.start_line,
            }),
            Instruction::Add(a) => written.push(Written {
                path: absolute(&workdir, &a.transfer.dest.value),
                verb: "ADD",
                line: command.start_line,
            }),
            Instruction::Run(run) => {
                for found in recursive_commands(&run.command, &workdir) {
                    let Some(w) = written.iter().find(|w| overlaps(&w.path, &found.path)) else {
                        continue;
                    };
                    let msg = format!(
                        "{} -R on {:?} copies the files {} wrote there (line {}) into a new layer; use {} --{} instead",
                        found.command, found.path, w.verb, w.line, w.verb, found.command
                    );
                    hits.push(Hit::new(rules::RUN_RECURSIVE_OWNERSHIP, msg, command.span));
                }
            }
            _ => {}
        }
    }
    (hits, workdir)
}

fn absolute(workdir: &str, path: &str) -> String {
    if path.starts_with('/') {
        clean(path)
    } else {
        clean(&format!("{workdir}/{path}"))
    }
}

/// One path contains the other (or they are the same).
fn overlaps(a: &str, b: &str) -> bool {
    let under = |x: &str, y: &str| {
        y == "/" || x == y || x.strip_prefix(y).is_some_and(|r| r.starts_with('/'))
    };
    under(a, b) || under(b, a)
}

/// The recursive chown/chmod targets of a RUN: shell form (and heredoc scripts), or exec form
/// either as a direct command or through `sh -c`.
fn recursive_commands(line: &CommandLine, workdir: &str) -> Vec<Recursive> {
    let mut scripts: Vec<Vec<Vec<String>>> = Vec::new();
    let args: Vec<String> = line.args.iter().map(|a| a.value.clone()).collect();
    match line.form {
        Form::Shell => scripts.extend(args.iter().map(|a| split_commands(a))),
        Form::Exec => match args.iter().position(|a| a == "-c") {
            Some(i) if is_shell(args.first()) => {
                scripts.extend(args.get(i + 1).map(|s| split_commands(s)))
            }
            _ => scripts.push(vec![args]),
        },
    }
    scripts.extend(line.heredocs.iter().map(|h| split_commands(&h.content)));
    scripts
        .iter()
        .flatten()
        .filter_map(|words| recursive(words))
        .flat_map(|(command, paths)| {
            paths.into_iter().map(move |p| Recursive {
                command,
                path: absolute(workdir, &p),
            })
        })
        .collect()
}

fn is_shell(program: Option<&String>) -> bool {
    let name = program.map_or("", |p| p.rsplit('/').next().unwrap_or(p));
    matches!(name, "sh" | "bash" | "ash" | "dash" | "zsh")
}

/// Splits a shell script into simple commands (on `;`, `&`, `|`, newlines and parentheses)
/// made of words with quotes and escapes removed; comments are dropped.
fn split_commands(script: &str) -> Vec<Vec<String>> {
    let mut commands = vec![Vec::new()];
    let mut word: Option<String> = None;
    let mut chars = script.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                w.extend(chars.by_ref().take_while(|&q| q != '\''));
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' => w.extend(chars.next()),
                        _ => w.push(q),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') | None => {}
                Some(next) => word.get_or_insert_with(String::new).push(next),
            },
            '#' if word.is_none() => {
                chars.by_ref().find(|&n| n == '\n');
                end_word(&mut commands, &mut word);
                commands.push(Vec::new());
            }
            ';' | '&' | '|' | '\n' | '(' | ')' => {
                end_word(&mut commands, &mut word);
                commands.push(Vec::new());
            }
            c if c.is_whitespace() => end_word(&mut commands, &mut word),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    end_word(&mut commands, &mut word);
    commands.retain(|c| !c.is_empty());
    commands
}

fn end_word(commands: &mut [Vec<String>], word: &mut Option<String>) {
    if let (Some(w), Some(current)) = (word.take(), commands.last_mut()) {
        current.push(w);
    }
}

/// `chown -R owner path...` / `chmod --recursive mode path...` (after `sudo`, `exec` or
/// variable assignments): the command and its literal paths.
fn recursive(words: &[String]) -> Option<(&'static str, Vec<String>)> {
    let start = words
        .iter()
        .position(|w| !matches!(w.as_str(), "sudo" | "exec" | "command") && !is_assignment(w))?;
    let program = words.get(start)?;
    let command = match program.rsplit('/').next().unwrap_or(program) {
        "chown" => "chown",
        "chmod" => "chmod",
        _ => return None,
    };
    let mut recursive = false;
    let mut reference = false;
    let mut operands: Vec<&str> = Vec::new();
    let mut rest = words.get(start + 1..)?.iter();
    for word in rest.by_ref() {
        match word.as_str() {
            "--" => break,
            "--recursive" => recursive = true,
            w if w.starts_with("--reference") => reference = true,
            w if w.starts_with("--") => {}
            w if command == "chmod" && operands.is_empty() && is_symbolic_mode(w) => {
                operands.push(w)
            }
            w if w.starts_with('-') && w.len() > 1 => recursive |= w.contains('R'),
            w => operands.push(w),
        }
    }
    operands.extend(rest.map(String::as_str));
    let skip = usize::from(!reference);
    let paths = operands
        .into_iter()
        .skip(skip)
        .filter_map(literal_prefix)
        .collect::<Vec<_>>();
    (recursive && !paths.is_empty()).then_some((command, paths))
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// A chmod mode that looks like an option (`-w`, `-rwx`).
fn is_symbolic_mode(word: &str) -> bool {
    word.strip_prefix('-')
        .is_some_and(|m| !m.is_empty() && m.chars().all(|c| "rwxXst".contains(c)))
}

/// The path up to its first element with a glob; `None` for paths with variables or that are
/// nothing but a glob.
fn literal_prefix(path: &str) -> Option<String> {
    if path.contains('$') || path.contains('`') {
        return None;
    }
    let elems: Vec<&str> = path.split('/').collect();
    let prefix = match elems.iter().position(|e| e.contains(['*', '?', '['])) {
        Some(i) => elems.get(..i)?.join("/"),
        None => path.to_owned(),
    };
    match prefix.as_str() {
        "" if path.starts_with('/') => Some("/".into()),
        "" => None,
        _ => Some(prefix),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn splits_chains_and_quotes() {
        let cmds = split_commands("apt-get update && chown -R 'app user' \"/a b\" # c\nls|wc");
        assert_eq!(cmds[1], words(&["chown", "-R", "app user", "/a b"]));
        assert_eq!(cmds[2], words(&["ls"]));
        assert_eq!(cmds.len(), 4);
    }

    #[test]
    fn finds_recursive_ownership() {
        assert_eq!(
            recursive(&words(&["sudo", "chown", "-hR", "1:1", "/app"])).map(|r| r.1),
            Some(words(&["/app"]))
        );
        assert_eq!(
            recursive(&words(&["chmod", "--recursive", "-w", "x/*"])).map(|r| r.1),
            Some(words(&["x"]))
        );
        assert_eq!(
            recursive(&words(&["chown", "--reference=/a", "-R", "/b"])).map(|r| r.1),
            Some(words(&["/b"]))
        );
        assert!(recursive(&words(&["chown", "app", "/app"])).is_none());
        assert!(recursive(&words(&["chown", "-R", "app", "$HOME"])).is_none());
        assert!(recursive(&words(&["echo", "chown", "-R", "a", "/b"])).is_none());
    }

    #[test]
    fn paths_overlap_either_way() {
        assert!(overlaps("/app", "/app/src"));
        assert!(overlaps("/app/src", "/app"));
        assert!(overlaps("/x", "/"));
        assert!(!overlaps("/app", "/apple"));
        assert_eq!(absolute("/app", "../etc/./x"), "/etc/x");
    }
}
