//! One stage: its base (scratch, an image, an earlier stage), ONBUILD triggers, then each
//! instruction in order; the result is stored as an image.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kiln_dockerfile::instructions::Instruction;
use kiln_dockerfile::stages::{Base, Expanded, Stage, StageOptions};
use kiln_image::{ImageBuilder, MediaFlavor, Reference, history_entry};
use kiln_store::{ImageRecord, StageRef};

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
            Base::Scratch => (scratch(), None),
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
        let mut run = Self {
            shared,
            name: stage.display_name(),
            position: 0,
            total: fs_steps + 1,
            builder,
            lowers: Vec::new(),
            meta: MetaState::default(),
        };
        let text = format!("FROM {}", from_text(stage));
        run.step(text, |run, _| {
            run.lowers = match (&stage.base, &base) {
                (Base::Stage(i), _) => shared.stage_output(*i)?.lowers.clone(),
                (_, Some(image)) => shared.layers.lowers(&image.layers)?,
                _ => Vec::new(),
            };
            Ok(())
        })?;
        run.onbuild_triggers()?;
        Ok(run)
    }

    /// Runs a progress step around `f`, reporting its start and outcome.
    pub fn step<T>(
        &mut self,
        text: String,
        f: impl FnOnce(&mut Self, usize) -> Result<T>,
    ) -> Result<T> {
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
        let result = f(self, info.id);
        let outcome = match &result {
            Ok(_) => StepOutcome::Done,
            Err(e) => StepOutcome::Failed(e.to_string()),
        };
        self.shared.progress(|p| p.step_finished(info.id, &outcome));
        result
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
                        let entry = history_entry(&text, Some(&crate::now()), true);
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
            let entry = history_entry(&format!("WORKDIR {dir}"), Some(&crate::now()), true);
            self.builder.add_empty_layer(entry);
            return Ok(());
        }
        let user = metadata::runtime(self.builder.config())
            .user()
            .clone()
            .filter(|u| !u.is_empty());
        let history = format!("WORKDIR {dir}");
        self.step(history.clone(), |run, _| {
            run.fs_step(history, |rootfs| {
                let owner = match &user {
                    Some(u) => kiln_fileop::resolve_chown(rootfs, u)?,
                    None => kiln_fileop::Owner::ROOT,
                };
                kiln_fileop::mkdir_p(rootfs, &dir, owner)?;
                Ok(())
            })
        })
    }

    /// Runs `work` on a snapshot of the current layers and commits its changes as a layer with
    /// history `created_by`. Mounts and temp dirs are released on every path.
    pub fn fs_step(
        &mut self,
        created_by: String,
        work: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<()> {
        let store = self.shared.store;
        let tmp = store.tmp_dir()?;
        let snapshot = self
            .shared
            .snapshotter
            .prepare(&stackable(&self.lowers), &tmp.path().join("snapshot"))?;
        work(snapshot.rootfs())?;
        let upper = snapshot.finish()?;
        let (layer, dir) = commit_upper(store, &upper)?;
        let entry = history_entry(&created_by, Some(&crate::now()), false);
        self.builder.add_layer(layer, entry);
        self.lowers.push(dir);
        Ok(())
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
        let config = self.builder.config_mut();
        config.oci.set_created(Some(crate::now()));
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
        })
    }
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
