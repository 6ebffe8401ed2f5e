//! Variable expansion per instruction, where BuildKit expands: ENV, LABEL, ARG defaults, ADD/COPY
//! (sources, destination, --chown, --chmod, --checksum, heredoc bodies), WORKDIR,
//! USER, EXPOSE, VOLUME, STOPSIGNAL and RUN --mount options; FROM with the global ARGs only.
//! Every substitution in one instruction sees the variables from before it (ARG included, as
//! docker 26 does; meta ARGs before the first FROM take effect one after the other).

use std::collections::{BTreeMap, BTreeSet};

use kiln_shell::Lexer;

use crate::ast::Span;
use crate::instructions::{
    self, Arg, Chmod, Command, Copy, Instruction, KeyValues, Spanned, Transfer, Typed,
};
use crate::{Error, Result};

use super::scope::{Expander, Scope};
use super::{Base, Expanded, Stage, StageOptions, resolve};

/// ARGs BuildKit reads itself and never exposes as variables.
const NON_ENV_ARGS: &[&str] = &["BUILDKIT_SBOM_SCAN_CONTEXT", "BUILDKIT_SBOM_SCAN_STAGE"];

/// What expanding one stage needs to know.
pub struct Ctx<'a> {
    pub lexer: &'a Lexer,
    /// For heredoc bodies (escape `\\` whatever the directive says).
    pub heredoc_lexer: &'a Lexer,
    pub global: &'a [(String, String)],
    /// Names declared by meta ARGs (with or without a value): not "undefined" in FROM.
    pub global_names: &'a BTreeSet<String>,
    pub build_args: &'a BTreeMap<String, String>,
    /// Every stage's name, by index.
    pub names: &'a [Option<String>],
    pub index: usize,
}

/// Expands the ARGs before the first FROM into the global scope, in order.
pub fn meta_args(
    commands: Vec<Command>,
    global: &mut Vec<(String, String)>,
    build_args: &BTreeMap<String, String>,
    lexer: &Lexer,
) -> Result<Vec<Expanded>> {
    let mut declared = BTreeSet::new();
    let mut out = Vec::with_capacity(commands.len());
    for mut command in commands {
        let env = global.clone();
        let mut undefined = BTreeSet::new();
        if let Instruction::Arg(arg) = &mut command.instruction {
            for decl in &mut arg.args {
                let mut ex = Expander::new(lexer, global.clone(), declared.clone());
                decl.value = match (build_args.get(&decl.name.value), &decl.default) {
                    (Some(v), _) => Some(v.clone()),
                    (None, Some(d)) => Some(ex.word(&d.value, d.span)?),
                    (None, None) => None,
                };
                undefined.extend(ex.undefined());
                declared.insert(decl.name.value.clone());
                match &decl.value {
                    Some(v) => set(global, &decl.name.value, v),
                    // Declared without a value, it hides an automatic ARG of that name: BuildKit's
                    // later meta ARG (with no value) wins the lookup.
                    None => global.retain(|(k, _)| *k != decl.name.value),
                }
            }
        }
        out.push(Expanded {
            command,
            undefined_vars: undefined,
            variable_from: Vec::new(),
            env,
            run_args: Vec::new(),
        });
    }
    Ok(out)
}

fn set(vars: &mut Vec<(String, String)>, name: &str, value: &str) {
    match vars.iter_mut().find(|(k, _)| k == name) {
        Some(slot) => slot.1 = value.to_owned(),
        None => vars.push((name.to_owned(), value.to_owned())),
    }
}

/// Expands a stage: its FROM with the global ARGs, then each instruction in its scope.
pub fn stage(
    ctx: &Ctx<'_>,
    mut from: Command,
    commands: Vec<Command>,
    done: &[Stage],
    opts: &StageOptions,
) -> Result<Stage> {
    let Instruction::From(f) = &mut from.instruction else {
        return Err(Error::new("stage does not start with FROM", from.span));
    };
    let mut ex = Expander::new(ctx.lexer, ctx.global.to_vec(), ctx.global_names.clone());
    let raw_image = f.image.value.clone();
    ex.spanned(&mut f.image)?;
    if f.image.value.is_empty() {
        return Err(Error::new(
            format!("base name ({raw_image}) should not be blank"),
            f.image.span,
        ));
    }
    if let Some(p) = &mut f.platform {
        expand_platform(&mut ex, p)?;
    }
    let base = resolve::base(&f.image.value, ctx.names, ctx.index);
    let mut scope = match &base {
        Base::Stage(i) => match done.get(*i) {
            Some(parent) => onbuild_env(ctx, parent)?,
            None => Scope::default(),
        },
        Base::Image(name) => {
            Scope::from_image_env(opts.image_env.get(name).map_or(&[][..], Vec::as_slice))
        }
        Base::Scratch => Scope::from_image_env(&[]),
    };
    let (name, platform) = (f.name.clone(), f.platform.clone());
    let undefined_vars = ex.undefined();
    let instructions = commands
        .into_iter()
        .map(|c| command(ctx, &mut scope, c))
        .collect::<Result<_>>()?;
    Ok(Stage {
        index: ctx.index,
        name,
        from,
        base,
        platform,
        undefined_vars,
        instructions,
        scope,
    })
}

fn expand_platform(ex: &mut Expander<'_>, p: &mut Spanned<String>) -> Result<()> {
    let raw = p.value.clone();
    ex.spanned(p)?;
    if p.value.is_empty() {
        return Err(Error::new(
            format!("empty platform value from expression {raw}"),
            p.span,
        ));
    }
    // containerd also accepts a lone OS or architecture (`linux`, `arm64`).
    let parts: Vec<&str> = p.value.split('/').collect();
    if parts.len() > 3 || parts.iter().any(|s| s.is_empty()) {
        let msg = format!(
            "failed to parse platform {raw}: {:?}: unknown operating system or architecture",
            p.value
        );
        return Err(Error::new(msg, p.span));
    }
    Ok(())
}

/// Expands one instruction against `scope` and applies its effect on the scope.
/// The scope a stage built on `parent` starts with: the parent's, plus what the parent's
/// `ONBUILD ENV` triggers set, as they run (in order) before the stage's own instructions.
fn onbuild_env(ctx: &Ctx<'_>, parent: &Stage) -> Result<Scope> {
    let mut scope = parent.scope.clone();
    for ex in &parent.instructions {
        if let Instruction::Onbuild(o) = &ex.command.instruction
            && matches!(o.trigger.instruction, Instruction::Env(_))
        {
            command(ctx, &mut scope, (*o.trigger).clone())?;
        }
    }
    Ok(scope)
}

fn command(ctx: &Ctx<'_>, scope: &mut Scope, mut command: Command) -> Result<Expanded> {
    let env = scope.env.clone();
    let run_args = scope.run_args();
    let mut ex = scope.expander(ctx.lexer);
    let mut variable_from = Vec::new();
    match &mut command.instruction {
        Instruction::Env(kv) => {
            pairs(&mut ex, kv)?;
            kv.pairs
                .iter()
                .for_each(|p| scope.set(&p.key.value, &p.value.value));
        }
        Instruction::Label(kv) => pairs(&mut ex, kv)?,
        Instruction::Arg(arg) => stage_arg(ctx, &mut ex, scope, arg)?,
        Instruction::Copy(c) => {
            transfer(ctx, &mut ex, &mut c.transfer)?;
            variable_from.extend(copy_source(ctx, &mut ex, c)?);
        }
        Instruction::Add(a) => {
            transfer(ctx, &mut ex, &mut a.transfer)?;
            if let Some(checksum) = &mut a.checksum {
                ex.spanned(checksum)?;
                check_checksum(checksum, &a.transfer)?;
            }
        }
        Instruction::Workdir(w) => ex.spanned(&mut w.path)?,
        Instruction::User(u) => ex.spanned(&mut u.user)?,
        Instruction::StopSignal(s) => {
            ex.spanned(&mut s.signal)?;
            instructions::parse_signal(&s.signal.value)
                .map_err(|m| Error::new(m, s.signal.span))?;
        }
        Instruction::Expose(e) => e.ports = expose(&mut ex, &e.ports)?,
        Instruction::Volume(v) => volume(&mut ex, &mut v.paths)?,
        Instruction::Run(r) => {
            for m in &mut r.mounts {
                variable_from.extend(mount(ctx, &mut ex, m)?);
            }
        }
        _ => {}
    }
    Ok(Expanded {
        command,
        undefined_vars: ex.undefined(),
        variable_from,
        env,
        run_args,
    })
}

/// Resolves `COPY --from`, expanding it first if it uses variables (kiln-only); returns the
/// flag's span in that case.
fn copy_source(ctx: &Ctx<'_>, ex: &mut Expander<'_>, c: &mut Copy) -> Result<Option<Span>> {
    let Some(from) = &mut c.from else {
        return Ok(None);
    };
    let variable = from.value.contains('$');
    if variable {
        ex.spanned(from)?;
    }
    c.source = Some(resolve::copy_from(
        &from.value,
        from.span,
        ctx.names,
        ctx.index,
    )?);
    Ok(variable.then_some(from.span))
}

fn pairs(ex: &mut Expander<'_>, kv: &mut KeyValues) -> Result<()> {
    for p in &mut kv.pairs {
        ex.spanned(&mut p.key)?;
        ex.spanned(&mut p.value)?;
    }
    Ok(())
}

/// ARG in a stage: a build-arg wins, else the default expanded with the variables from before
/// the instruction (docker 26 gives `b` = `x` for `ARG a=1 b=${a}x`), else the global value.
fn stage_arg(ctx: &Ctx<'_>, ex: &mut Expander<'_>, scope: &mut Scope, arg: &mut Arg) -> Result<()> {
    for decl in &mut arg.args {
        let name = decl.name.value.clone();
        decl.value = match (ctx.build_args.get(&name), &decl.default) {
            (Some(v), _) => Some(v.clone()),
            (None, Some(d)) => Some(ex.word(&d.value, d.span)?),
            (None, None) => ctx
                .global
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone()),
        };
        let exposed = decl
            .value
            .as_ref()
            .filter(|_| !NON_ENV_ARGS.contains(&name.as_str()));
        if let Some(v) = exposed {
            scope.set(&name, v);
        }
        scope.args.push((name, decl.value.clone()));
    }
    Ok(())
}

fn transfer(ctx: &Ctx<'_>, ex: &mut Expander<'_>, t: &mut Transfer) -> Result<()> {
    if let Some(chown) = &mut t.chown {
        ex.spanned(chown)?;
    }
    if let Some(chmod) = &mut t.chmod {
        expand_chmod(ex, chmod)?;
    }
    // BuildKit leaves --exclude patterns unexpanded.
    for s in &mut t.sources {
        ex.spanned(s)?;
    }
    ex.spanned(&mut t.dest)?;
    for inline in t.inline_sources.iter_mut().filter(|i| i.expand) {
        let body = literal_quotes(&inline.content);
        inline.content = ex.word_with(ctx.heredoc_lexer, &body, inline.span)?;
    }
    Ok(())
}

/// Escapes unescaped quotes so the lexer takes them literally: BuildKit expands heredoc bodies
/// with quote processing off (`SkipProcessQuotes`), so `'$HOME'` expands there.
fn literal_quotes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                out.push(c);
                out.extend(chars.next());
            }
            '\'' | '"' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// `ADD --checksum`: a valid digest, for a single HTTP(S) source (as BuildKit requires).
fn check_checksum(checksum: &Spanned<String>, t: &Transfer) -> Result<()> {
    instructions::check_digest(&checksum.value).map_err(|m| Error::new(m, checksum.span))?;
    let message = match t.sources.as_slice() {
        [s] if s.value.starts_with("http://") || s.value.starts_with("https://") => return Ok(()),
        [_] => "checksum can't be specified for non-HTTP(S) sources",
        _ => "checksum can't be specified for multiple sources",
    };
    Err(Error::new(message, checksum.span))
}

fn expand_chmod(ex: &mut Expander<'_>, chmod: &mut Typed<Chmod>) -> Result<()> {
    chmod.text = ex.word(&chmod.text, chmod.span)?;
    chmod.value = Some(Chmod::parse(&chmod.text).map_err(|m| Error::new(m, chmod.span))?);
    Ok(())
}

/// EXPOSE words are split after expansion (`EXPOSE $PORTS`).
fn expose(ex: &mut Expander<'_>, ports: &[Spanned<String>]) -> Result<Vec<Spanned<String>>> {
    let mut out = Vec::with_capacity(ports.len());
    for p in ports {
        for word in ex.words(&p.value, p.span)? {
            instructions::parse_port_spec(&word).map_err(|m| Error::new(m, p.span))?;
            out.push(Spanned::new(word, p.span));
        }
    }
    Ok(out)
}

fn volume(ex: &mut Expander<'_>, paths: &mut [Spanned<String>]) -> Result<()> {
    for p in paths {
        ex.spanned(p)?;
        if p.value.is_empty() {
            return Err(Error::new(
                "VOLUME specified can not be an empty string",
                p.span,
            ));
        }
    }
    Ok(())
}

/// Parses a mount with its options expanded; returns the span of `from=` when it used variables.
fn mount(
    ctx: &Ctx<'_>,
    ex: &mut Expander<'_>,
    m: &mut Typed<instructions::Mount>,
) -> Result<Option<Span>> {
    let mut variable_from = false;
    let span = m.span;
    let mut parsed = instructions::mount_at(&m.text, span, &mut |key: &str, value: &str| {
        variable_from |= key == "from" && value.contains('$');
        ex.word(value, span).map_err(|e| e.message)
    })?;
    let keeps_from = !matches!(
        parsed.kind,
        instructions::MountType::Secret | instructions::MountType::Ssh
    );
    if let Some(from) = parsed.from.as_deref().filter(|_| keeps_from) {
        parsed.source_ref = Some(resolve::mount_from(from, span, ctx.names, ctx.index)?);
    }
    m.value = Some(parsed);
    Ok(variable_from.then_some(span))
}
