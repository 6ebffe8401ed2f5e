//! One stage: its base (scratch, an image, an earlier stage), ONBUILD triggers, then each
//! instruction in order; the result is stored as an image.
//!
//! Layer-making steps go through the step cache (see [`crate::cache`]): a step whose key has a
//! record reuses the recorded layer and history entry instead of running.
//!
//! Every timestamp the stage writes is the build's epoch (see [`crate::epoch`]): the layers it
//! makes clamp their mtimes to it, and its history entries and the image's `created` are it, so
//! a cold build, a fully cached rebuild and a build on another machine give the same image.
//! The epoch is part of every stage's root key, so a cached layer always has the epoch's mtimes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kiln_dockerfile::instructions::Instruction;
use kiln_dockerfile::stages::{Base, Expanded, Stage, StageOptions};
use kiln_image::{ImageBuilder, MediaFlavor, Reference, history_entry};
use kiln_layer::LayerOptions;
use kiln_store::{CacheRecord, ImageRecord, StageRef};

use crate::cache::{KeyBuilder, SCRATCH_ROOT};
use crate::copy::Op;
use crate::engine::Shared;
use crate::error::{BuildError, Result};
use crate::layers::{BaseImage, commit_upper, stackable};
use crate::metadata::{self, Applied, MetaState};
use crate::progress::{StepInfo, StepOutcome};

/// A finished stage: what later stages build on or copy from.
#[derive(Debug, Clone)]
pub(crate) struct StageOutput {
    pub name: String,
    pub builder: ImageBuilder,
    /// Unpacked layers in overlay form, bottom first.
    pub lowers: Vec<PathBuf>,
    pub record: ImageRecord,
    /// The stage's final cache key: what `FROM <stage>` and `--from=<stage>` key on.
    pub key: String,
    /// The step records it wrote or used.
    pub records: Vec<CacheRecord>,
}

/// How a step got its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ran {
    /// It ran.
    Executed,
    /// The step cache had it.
    Cached,
}

/// A stage being built.
pub(crate) struct StageRun<'s, 'a> {
    pub shared: &'s Shared<'a>,
    pub name: String,
    position: usize,
    total: usize,
    pub builder: ImageBuilder,
    pub lowers: Vec<PathBuf>,
    meta: MetaState,
    /// Cache key of the last layer-making step (the stage's root before any).
    pub key: String,
    /// Whether steps may be served from the cache (not under `--no-cache`/`--no-cache-filter`).
    pub use_cache: bool,
    /// The step being run, as the progress shows it; cache records name it.
    pub step_text: String,
    /// Cache records this stage wrote or used, relabelled with the final labels at its end.
    pub records: Vec<CacheRecord>,
}

/// Builds stage `index` and stores its image.
pub(crate) fn run_stage(shared: &Shared<'_>, index: usize) -> Result<StageOutput> {
    let stage = shared
        .df
        .stages
        .get(index)
        .ok_or_else(|| BuildError::Invalid(format!("no stage {index}")))?;
    let mut run = StageRun::start(shared, stage)?;
    for ex in &stage.instructions {
        run.instruction(ex)?;
    }
    run.store(index)
}

/// Whether an instruction makes a progress step (and a layer).
fn is_fs_step(instruction: &Instruction) -> bool {
    matches!(
        instruction,
        Instruction::Run(_) | Instruction::Copy(_) | Instruction::Add(_) | Instruction::Workdir(_)
    )
}

/// Whether an ONBUILD trigger's text starts with a layer-making instruction.
fn is_fs_trigger(trigger: &str) -> bool {
    let keyword = trigger.split_whitespace().next().unwrap_or_default();
    ["RUN", "COPY", "ADD", "WORKDIR"]
        .iter()
        .any(|k| k.eq_ignore_ascii_case(keyword))
}

impl<'s, 'a> StageRun<'s, 'a> {
    /// Resolves the base and runs the FROM step (unpacking base layers) and ONBUILD triggers.
    fn start(shared: &'s Shared<'a>, stage: &Stage) -> Result<Self> {
        let (builder, base) = match &stage.base {
            Base::Scratch => (
                crate::platform::scratch_for(shared.req, stage, scratch())?,
                None,
            ),
            Base::Stage(i) => (shared.stage_output(*i)?.builder.clone(), None),
            Base::Image(name) => {
                let image = BaseImage::load(shared.store, name)?;
                (image.builder()?, Some(image))
            }
        };
        let trigger_steps = builder
            .config()
            .docker
            .on_build
            .iter()
            .flatten()
            .filter(|t| is_fs_trigger(t))
            .count();
        let fs_steps = trigger_steps
            + stage
                .instructions
                .iter()
                .filter(|e| is_fs_step(&e.command.instruction))
                .count();
        let name = stage.display_name();
        let key = root(shared, stage)?;
        let mut run = Self {
            shared,
            use_cache: use_cache(shared, &name),
            name,
            position: 0,
            total: fs_steps + 1,
            builder,
            lowers: Vec::new(),
            meta: MetaState::default(),
            key,
            step_text: String::new(),
            records: Vec::new(),
        };
        let text = format!("FROM {}", from_text(stage));
        run.step(text, |run, _| {
            run.lowers = match (&stage.base, &base) {
                (Base::Stage(i), _) => shared.stage_output(*i)?.lowers.clone(),
                (_, Some(image)) => shared.layers.lowers(&image.layers)?,
                _ => Vec::new(),
            };
            // Like BuildKit, a base already at hand counts as cached.
            Ok(if run.use_cache {
                Ran::Cached
            } else {
                Ran::Executed
            })
        })?;
        run.onbuild_triggers()?;
        Ok(run)
    }

    /// Runs a progress step around `f`, reporting its start and outcome (cached or not).
    pub fn step(
        &mut self,
        text: String,
        f: impl FnOnce(&mut Self, usize) -> Result<Ran>,
    ) -> Result<()> {
        self.position += 1;
        self.total = self.total.max(self.position);
        let info = StepInfo {
            id: self.shared.next_step(),
            stage: self.name.clone(),
            index: self.position,
            total: self.total,
            text,
        };
        self.shared.progress(|p| p.step_started(&info));
        self.step_text = info.text;
        let result = f(self, info.id);
        let outcome = match &result {
            Ok(Ran::Executed) => StepOutcome::Done,
            Ok(Ran::Cached) => StepOutcome::Cached,
            Err(e) => StepOutcome::Failed(e.to_string()),
        };
        self.shared.progress(|p| p.step_finished(info.id, &outcome));
        result.map(drop)
    }

    /// `created` of the stage's history entries and image: the build's epoch.
    pub fn created(&self) -> &str {
        &self.shared.epoch.created
    }

    /// Applies one instruction.
    pub fn instruction(&mut self, ex: &Expanded) -> Result<()> {
        let instruction = &ex.command.instruction;
        match instruction {
            Instruction::Run(r) => crate::run::run(self, ex, r),
            Instruction::Copy(c) => crate::copy::copy(self, Op::Copy(c)),
            Instruction::Add(a) => crate::copy::copy(self, Op::Add(a)),
            Instruction::Workdir(w) => self.workdir(&w.path.value),
            other => {
                let config = self.builder.config_mut();
                match metadata::apply(config, &mut self.meta, other)? {
                    Applied::History(text) => {
                        let entry = history_entry(&text, Some(self.created()), true);
                        self.builder.add_empty_layer(entry);
                        Ok(())
                    }
                    Applied::Silent => Ok(()),
                    Applied::NotMetadata => Err(BuildError::Invalid(format!(
                        "{} cannot be applied here",
                        other.name()
                    ))),
                }
            }
        }
    }

    /// WORKDIR: sets the working directory and, unless it is `/`, makes a layer creating it
    /// (owned by the current USER) even when it already exists, as BuildKit does.
    fn workdir(&mut self, path: &str) -> Result<()> {
        let dir = metadata::workdir(self.builder.config(), path);
        self.builder.config_mut().update_runtime(|c| {
            c.set_working_dir(Some(dir.clone()));
        });
        if dir == "/" {
            let entry = history_entry(&format!("WORKDIR {dir}"), Some(self.created()), true);
            self.builder.add_empty_layer(entry);
            return Ok(());
        }
        let user = metadata::runtime(self.builder.config())
            .user()
            .clone()
            .filter(|u| !u.is_empty());
        let history = format!("WORKDIR {dir}");
        self.step(history.clone(), |run, _| {
            let mut key = KeyBuilder::new(&run.key, "workdir");
            key.field(&dir).field(user.as_deref().unwrap_or_default());
            run.fs_step(Some(key.finish()), history, |rootfs| {
                let owner = match &user {
                    Some(u) => kiln_fileop::resolve_chown(rootfs, u)?,
                    None => kiln_fileop::Owner::ROOT,
                };
                kiln_fileop::mkdir_p(rootfs, &dir, owner)?;
                Ok(())
            })
        })
    }

    /// A layer-making step: served from the cache under `key` when it can be, else `work` runs
    /// on a snapshot of the current layers and its changes become a layer with history
    /// `created_by`, recorded under `key`. Without a key (inputs that cannot be identified) the
    /// step always runs and later keys chain on the layer it produced.
    pub fn fs_step(
        &mut self,
        key: Option<String>,
        created_by: String,
        work: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<Ran> {
        if let Some(hit) = self.cached(key.as_deref())? {
            self.reuse(hit, &created_by);
            return Ok(Ran::Cached);
        }
        let layer = self.fresh_layer(created_by, work)?;
        self.key = match key {
            Some(key) => {
                self.record(&key, &layer)?;
                key
            }
            None => {
                let mut k = KeyBuilder::new(&self.key, "content");
                k.field(layer.diff_id.as_ref());
                k.finish()
            }
        };
        Ok(Ran::Executed)
    }

    /// Runs `work` and commits its changes as a layer, mtimes clamped to the epoch.
    /// Mounts and temp dirs are released on every path.
    fn fresh_layer(
        &mut self,
        created_by: String,
        work: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<kiln_image::LayerInfo> {
        let store = self.shared.store;
        let tmp = store.tmp_dir()?;
        let snapshot = self
            .shared
            .snapshotter
            .prepare(&stackable(&self.lowers), &tmp.path().join("snapshot"))?;
        work(snapshot.rootfs())?;
        let upper = snapshot.finish()?;
        let opts = LayerOptions {
            compression: self.shared.req.compression,
            source_date_epoch: Some(self.shared.epoch.secs),
            ..LayerOptions::default()
        };
        let (layer, dir) = commit_upper(store, &upper, &opts)?;
        let entry = history_entry(&created_by, Some(self.created()), false);
        self.builder.add_layer(layer.clone(), entry);
        self.lowers.push(dir);
        Ok(layer)
    }

    /// Runs the base image's ONBUILD triggers, then clears them from this stage's config.
    fn onbuild_triggers(&mut self) -> Result<()> {
        let Some(triggers) = self.builder.config_mut().docker.on_build.take() else {
            return Ok(());
        };
        if triggers.is_empty() {
            return Ok(());
        }
        const BASE: &str = "kiln-onbuild-base";
        let source = format!("FROM {BASE}\n{}\n", triggers.join("\n"));
        let env: Vec<(String, String)> = metadata::runtime(self.builder.config())
            .env()
            .clone()
            .unwrap_or_default()
            .iter()
            .filter_map(|e| e.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let opts = StageOptions {
            image_env: BTreeMap::from([(BASE.to_string(), env)]),
            ..StageOptions::default()
        };
        let render =
            |e: kiln_dockerfile::Error| BuildError::Dockerfile(e.render("ONBUILD", &source));
        let ast = kiln_dockerfile::parser::parse(&source).map_err(render)?;
        let df = kiln_dockerfile::stages::stages(&ast, &source, &self.shared.req.build_args, &opts)
            .map_err(render)?;
        for ex in df.stages.iter().flat_map(|s| &s.instructions) {
            self.instruction(ex)?;
        }
        Ok(())
    }

    /// Stores the stage's image: the target with the requested tags and labels, any other
    /// stage as an untagged intermediate image named after the stage.
    fn store(mut self, index: usize) -> Result<StageOutput> {
        let shared = self.shared;
        let is_target = index == shared.target;
        self.relabel_records()?;
        let created = self.created().to_string();
        let config = self.builder.config_mut();
        config.oci.set_created(Some(created));
        if is_target && !shared.req.labels.is_empty() {
            let labels = &shared.req.labels;
            config.update_runtime(|c| {
                let mut all = c.labels().clone().unwrap_or_default();
                all.extend(labels.iter().map(|(k, v)| (k.clone(), v.clone())));
                c.set_labels(Some(all));
            });
        }
        let built = self.builder.build(MediaFlavor::Oci)?;
        let (tags, intermediate) = if is_target {
            let tags = shared
                .req
                .tags
                .iter()
                .map(|t| Reference::parse(t).map_err(|e| BuildError::Invalid(e.to_string())))
                .collect::<Result<Vec<_>>>()?;
            (tags, None)
        } else {
            let stage = StageRef {
                build_id: shared.build_id.clone(),
                stage: self.name.clone(),
            };
            (Vec::new(), Some(stage))
        };
        let record = shared.store.put_built(&built, tags, intermediate)?;
        Ok(StageOutput {
            name: self.name,
            builder: self.builder,
            lowers: self.lowers,
            record,
            key: self.key,
            records: self.records,
        })
    }
}

/// The stage's root key: the base stage's final key, or the base image's manifest digest
/// (the scratch constant) with the build's epoch, which decides the mtimes of every layer after.
fn root(shared: &Shared<'_>, stage: &Stage) -> Result<String> {
    let base = match &stage.base {
        Base::Stage(i) => return Ok(shared.stage_output(*i)?.key.clone()),
        Base::Image(name) => shared.store.resolve(name)?.manifest_digest.to_string(),
        Base::Scratch => SCRATCH_ROOT.to_string(),
    };
    let mut key = KeyBuilder::new(&base, "epoch");
    key.field(&shared.epoch.secs.to_string());
    Ok(key.finish())
}

/// Whether the stage may use cached steps: not under `--no-cache`, nor named by
/// `--no-cache-filter` (display names: `builder`, `stage-2`).
fn use_cache(shared: &Shared<'_>, name: &str) -> bool {
    let req = shared.req;
    !req.no_cache
        && !req
            .no_cache_filter
            .iter()
            .any(|f| f.trim().eq_ignore_ascii_case(name))
}

/// `FROM scratch`: BuildKit's empty image has the default PATH and WorkingDir `/`.
fn scratch() -> ImageBuilder {
    let mut builder = crate::import::scratch_builder();
    builder.config_mut().update_runtime(|c| {
        c.set_env(Some(vec![format!(
            "PATH={}",
            kiln_dockerfile::stages::DEFAULT_PATH
        )]));
        c.set_working_dir(Some("/".into()));
    });
    builder
}

fn from_text(stage: &Stage) -> String {
    match &stage.from.instruction {
        Instruction::From(f) => f.image.value.clone(),
        _ => String::new(),
    }
}
