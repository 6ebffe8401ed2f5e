//! The dependency graph between stages.

use std::collections::BTreeSet;

use kiln_dockerfile::instructions::{Instruction, Source};
use kiln_dockerfile::stages::{Base, Dockerfile, Stage};

/// Why a plan cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("circular dependency detected on stage: {0}")]
    Cycle(String),
    #[error("stage index {0} is out of range")]
    NoSuchStage(usize),
}

/// One stage and what it reads from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageNode {
    pub index: usize,
    /// Lower-cased `AS` name.
    pub name: Option<String>,
    pub base: Base,
    /// Stages this one reads from (its base stage, `COPY --from`, `RUN --mount=from`).
    pub depends_on: BTreeSet<usize>,
    /// Images (not stages) this one reads from: its base image and `--from` images.
    pub images: BTreeSet<String>,
}

/// The stages of a Dockerfile and the edges between them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageGraph {
    pub nodes: Vec<StageNode>,
}

impl StageGraph {
    /// Builds the graph and rejects cycles (the stage layer already forbids forward references;
    /// this keeps the planner correct on its own).
    pub fn new(dockerfile: &Dockerfile) -> Result<Self, PlanError> {
        let graph = Self {
            nodes: dockerfile.stages.iter().map(node).collect(),
        };
        graph.topological_order()?;
        Ok(graph)
    }

    /// Every stage `target` needs, itself included, sorted by index.
    pub fn needed(&self, target: usize) -> Result<Vec<usize>, PlanError> {
        self.node(target)?;
        let mut seen = BTreeSet::new();
        let mut todo = vec![target];
        while let Some(index) = todo.pop() {
            if seen.insert(index) {
                todo.extend(self.node(index)?.depends_on.iter().copied());
            }
        }
        Ok(seen.into_iter().collect())
    }

    /// The needed stages grouped in waves: every stage of a wave depends only on earlier waves,
    /// so the stages of one wave can run in parallel.
    pub fn waves(&self, target: usize) -> Result<Vec<Vec<usize>>, PlanError> {
        let needed = self.needed(target)?;
        let mut depth = vec![0usize; self.nodes.len()];
        for &index in &self.topological_order()? {
            let node = self.node(index)?;
            depth[index] = node
                .depends_on
                .iter()
                .map(|d| depth[*d] + 1)
                .max()
                .unwrap_or(0);
        }
        let mut waves: Vec<Vec<usize>> = Vec::new();
        for index in needed {
            let d = depth[index];
            if waves.len() <= d {
                waves.resize(d + 1, Vec::new());
            }
            waves[d].push(index);
        }
        waves.retain(|w| !w.is_empty());
        Ok(waves)
    }

    fn node(&self, index: usize) -> Result<&StageNode, PlanError> {
        self.nodes.get(index).ok_or(PlanError::NoSuchStage(index))
    }

    /// Kahn's algorithm; a leftover node means a cycle.
    fn topological_order(&self) -> Result<Vec<usize>, PlanError> {
        let mut pending: Vec<usize> = self.nodes.iter().map(|n| n.depends_on.len()).collect();
        let mut ready: Vec<usize> = (0..self.nodes.len()).filter(|i| pending[*i] == 0).collect();
        let mut order = Vec::with_capacity(self.nodes.len());
        while let Some(index) = ready.pop() {
            order.push(index);
            for user in self.nodes.iter().filter(|n| n.depends_on.contains(&index)) {
                pending[user.index] -= 1;
                if pending[user.index] == 0 {
                    ready.push(user.index);
                }
            }
        }
        match self.nodes.iter().find(|n| pending[n.index] > 0) {
            Some(stuck) => Err(PlanError::Cycle(display_name(stuck))),
            None => Ok(order),
        }
    }
}

fn display_name(node: &StageNode) -> String {
    node.name
        .clone()
        .unwrap_or_else(|| format!("stage-{}", node.index))
}

fn node(stage: &Stage) -> StageNode {
    let mut depends_on = BTreeSet::new();
    let mut images = BTreeSet::new();
    let mut add = |source: &Source| match source {
        Source::Stage(index) => {
            depends_on.insert(*index);
        }
        Source::Image(image) => {
            images.insert(image.clone());
        }
    };
    match &stage.base {
        Base::Stage(index) => add(&Source::Stage(*index)),
        Base::Image(image) => add(&Source::Image(image.clone())),
        Base::Scratch => {}
    }
    for expanded in &stage.instructions {
        for source in sources(&expanded.command.instruction) {
            add(source);
        }
    }
    StageNode {
        index: stage.index,
        name: stage.name.as_ref().map(|n| n.value.clone()),
        base: stage.base.clone(),
        depends_on,
        images,
    }
}

/// The stages or images one instruction reads from.
fn sources(instruction: &Instruction) -> Vec<&Source> {
    match instruction {
        Instruction::Copy(copy) => copy.source.iter().collect(),
        Instruction::Run(run) => run
            .mounts
            .iter()
            .filter_map(|m| m.value.as_ref()?.source_ref.as_ref())
            .collect(),
        _ => Vec::new(),
    }
}
