//! Stage graph, target selection and build order for multi-stage Dockerfiles.
//!
//! The graph is known before any step runs: edges come from `FROM <stage>`, `COPY --from=<stage>`
//! and `RUN --mount=from=<stage>`. Only the stages the target needs are built, and stages with no
//! path between them can be built at the same time ([`StageGraph::waves`]).

mod graph;
mod outline;

pub use graph::{PlanError, StageGraph, StageNode};
pub use outline::{Outline, OutlineArg, OutlineStage};
