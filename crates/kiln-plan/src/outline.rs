//! `kiln outline`: what a build of a target would do, before doing it.

use std::collections::BTreeMap;

use kiln_dockerfile::instructions::Instruction;
use kiln_dockerfile::stages::{Base, Dockerfile, Expanded};
use serde::Serialize;

use crate::{PlanError, StageGraph};

/// The stages, the target, what it needs and in which order, and the ARGs that matter.
#[derive(Debug, Clone, Serialize)]
pub struct Outline {
    pub stages: Vec<OutlineStage>,
    pub target: usize,
    /// Every stage the target needs, itself included, sorted.
    pub needed: Vec<usize>,
    /// Needed stages in build order; stages of one wave can run at the same time.
    pub waves: Vec<Vec<usize>>,
    pub args: Vec<OutlineArg>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OutlineStage {
    pub index: usize,
    pub name: Option<String>,
    /// The base as written after expansion (`scratch`, an image, or a stage name).
    pub base: String,
    /// The stage index when the base is a stage.
    pub base_stage: Option<usize>,
    pub depends_on: Vec<usize>,
    /// External images the stage reads (its base image and `--from` images).
    pub images: Vec<String>,
    pub platform: Option<String>,
    pub line: usize,
}

/// An ARG that affects the build of the target: a global one or one declared in a needed stage.
#[derive(Debug, Clone, Serialize)]
pub struct OutlineArg {
    pub name: String,
    /// The value the build would use (a `--build-arg` wins over the default).
    pub value: Option<String>,
    pub default: Option<String>,
    /// The stage that declares it; `None` for a global ARG (before the first FROM).
    pub stage: Option<usize>,
    pub line: usize,
}

impl Outline {
    pub fn new(
        dockerfile: &Dockerfile,
        target: usize,
        build_args: &BTreeMap<String, String>,
    ) -> Result<Self, PlanError> {
        let graph = StageGraph::new(dockerfile)?;
        let needed = graph.needed(target)?;
        let mut args = declared_args(&dockerfile.meta_args, None, build_args);
        for &index in &needed {
            let stage = &dockerfile.stages[index];
            args.extend(declared_args(&stage.instructions, Some(index), build_args));
        }
        let stages = dockerfile
            .stages
            .iter()
            .zip(&graph.nodes)
            .map(|(stage, node)| OutlineStage {
                index: stage.index,
                name: node.name.clone(),
                base: match &stage.base {
                    Base::Scratch => "scratch".to_owned(),
                    Base::Image(image) => image.clone(),
                    Base::Stage(_) => from_image(&stage.from.instruction),
                },
                base_stage: match stage.base {
                    Base::Stage(index) => Some(index),
                    _ => None,
                },
                depends_on: node.depends_on.iter().copied().collect(),
                images: node.images.iter().cloned().collect(),
                platform: stage.platform.as_ref().map(|p| p.value.clone()),
                line: stage.from.start_line,
            })
            .collect();
        Ok(Self {
            stages,
            target,
            waves: graph.waves(target)?,
            needed,
            args,
        })
    }
}

/// The image word of a FROM as written after expansion.
fn from_image(instruction: &Instruction) -> String {
    match instruction {
        Instruction::From(from) => from.image.value.clone(),
        _ => String::new(),
    }
}

fn declared_args(
    instructions: &[Expanded],
    stage: Option<usize>,
    build_args: &BTreeMap<String, String>,
) -> Vec<OutlineArg> {
    let mut out = Vec::new();
    for expanded in instructions {
        let Instruction::Arg(arg) = &expanded.command.instruction else {
            continue;
        };
        for decl in &arg.args {
            let default = decl.default.as_ref().map(|d| d.value.clone());
            out.push(OutlineArg {
                name: decl.name.value.clone(),
                value: build_args
                    .get(&decl.name.value)
                    .cloned()
                    .or(default.clone()),
                default,
                stage,
                line: expanded.command.start_line,
            });
        }
    }
    out
}
