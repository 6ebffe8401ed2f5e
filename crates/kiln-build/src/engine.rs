//! Orchestration: parse and plan, run the needed stages wave by wave (a wave's stages in
//! parallel threads), store every stage's image, report the summary.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kiln_context::{Context, IgnoreMatcher};
use kiln_dockerfile::stages::{Base, Dockerfile, StageOptions};
use kiln_executor::{Executor, LibcontainerExecutor, RuncExecutor};
use kiln_plan::StageGraph;
use kiln_snapshot::Snapshotter;
use kiln_store::{Lease, Store};

use crate::cache::ContextSums;
use crate::cache_export::Exchange;
use crate::epoch::Epoch;
use crate::error::{BuildError, Result};
use crate::fetch::BaseLoader;
use crate::layers::{BaseImage, LayerCache};
use crate::progress::{BuildSummary, Progress, StageSize};
use crate::stage::{StageOutput, run_stage};
use crate::{BuildRequest, BuildResult, BuiltStage, Runtime};

/// How long the build's lease keeps its blobs and layers from GC if the process dies.
const LEASE_TTL: Duration = Duration::from_secs(24 * 3600);

/// Base images' ENV by name, as stage expansion and lint take it.
type ImageEnv = BTreeMap<String, Vec<(String, String)>>;

/// The expanded Dockerfile, the target, its waves, and the base images' ENV.
type Plan = (Dockerfile, usize, Vec<Vec<usize>>, ImageEnv);

/// Everything the stages of one build share.
pub(crate) struct Shared<'a> {
    pub store: &'a Store,
    pub req: &'a BuildRequest,
    pub df: Dockerfile,
    pub target: usize,
    pub build_id: String,
    pub snapshotter: Box<dyn Snapshotter>,
    pub executor: Box<dyn Executor>,
    pub context: Context,
    pub layers: LayerCache<'a>,
    /// Checksums of context sources for cache keys.
    pub sums: ContextSums,
    /// `--cache-from` caches, and the cache mounts steps name.
    pub exchange: Exchange,
    /// `SOURCE_DATE_EPOCH`: mtimes and `created` of what the build makes.
    pub epoch: Epoch,
    /// Keeps what the build writes, and the cached layers it reuses, from GC until it ends.
    pub lease: Lease,
    progress: Mutex<&'a mut dyn Progress>,
    next_step: AtomicUsize,
    results: Mutex<Vec<Option<Arc<StageOutput>>>>,
}

impl Shared<'_> {
    /// Runs `f` with the progress sink (events of parallel stages are serialised here).
    pub fn progress(&self, f: impl FnOnce(&mut dyn Progress)) {
        let mut guard = self.progress.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut **guard);
    }

    /// The next build-wide step number.
    pub fn next_step(&self) -> usize {
        self.next_step.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The result of an earlier stage (waves guarantee it is done).
    pub fn stage_output(&self, index: usize) -> Result<Arc<StageOutput>> {
        let results = self.results.lock().unwrap_or_else(|p| p.into_inner());
        results.get(index).cloned().flatten().ok_or_else(|| {
            BuildError::Invalid(format!("stage {index} is used before it was built"))
        })
    }
}

/// Builds `req` into `store`, reporting to `progress`.
pub fn build(
    store: &Store,
    req: &BuildRequest,
    progress: &mut dyn Progress,
) -> Result<BuildResult> {
    let epoch = Epoch::from_build_args(&req.build_args)?;
    let lease = store.lease(LEASE_TTL)?;
    let (df, target, waves, image_env) = plan(store, req)?;
    lint(req, image_env, progress)?;
    let exchange = Exchange::load(store, &req.cache_from, progress)?;
    let scratch = store.tmp_dir()?;
    let dockerfile = dockerfile_path(req);
    let matcher = IgnoreMatcher::from_context(&req.context, &dockerfile)?;
    let stage_count = df.stages.len();
    let shared = Shared {
        store,
        req,
        df,
        target,
        build_id: crate::now(),
        snapshotter: kiln_snapshot::detect(scratch.path()),
        executor: executor(&req.runtime, scratch.path().join("exec")),
        context: Context::dir(&req.context, matcher)?,
        layers: LayerCache::new(store),
        sums: ContextSums::open(store.root(), &req.context)?,
        exchange,
        epoch,
        lease,
        progress: Mutex::new(progress),
        next_step: AtomicUsize::new(0),
        results: Mutex::new(vec![None; stage_count]),
    };
    let outcome = waves.iter().try_for_each(|wave| run_wave(&shared, wave));
    // Checksums computed before a failure are still valid: keep them either way.
    if let Err(e) = shared.sums.save() {
        shared.progress(|p| p.warning(&format!("saving the context hash cache: {e}")));
    }
    outcome?;
    let result = finish(&shared)?;
    shared.lease.release()?;
    Ok(result)
}

fn dockerfile_path(req: &BuildRequest) -> PathBuf {
    req.dockerfile_path
        .clone()
        .unwrap_or_else(|| req.context.join("Dockerfile"))
}

/// Runs BuildKit's build checks: findings become warnings; under `error=true` they fail.
fn lint(req: &BuildRequest, image_env: ImageEnv, progress: &mut dyn Progress) -> Result<()> {
    let opts = kiln_dockerfile::lint::LintOptions {
        build_args: req.build_args.clone(),
        context: Some(req.context.clone()),
        dockerfile: Some(dockerfile_path(req)),
        dockerignore: None,
        image_env,
    };
    // `plan` parsed the Dockerfile already: a lint failure here is not a build failure.
    let Ok(report) = kiln_dockerfile::lint::lint(&req.dockerfile, &opts) else {
        return Ok(());
    };
    for f in &report.findings {
        progress.warning(&format!("{}: {} (line {})", f.rule, f.message, f.line));
    }
    match report.violation_message() {
        Some(message) if report.error => Err(BuildError::Lint(message)),
        _ => Ok(()),
    }
}

/// Parses the Dockerfile, expands its stages with their base images' ENV, and plans the waves.
fn plan(store: &Store, req: &BuildRequest) -> Result<Plan> {
    let render = |e: kiln_dockerfile::Error| {
        BuildError::Dockerfile(e.render(&req.dockerfile_name, &req.dockerfile))
    };
    let ast = kiln_dockerfile::parser::parse(&req.dockerfile).map_err(render)?;
    let mut opts = StageOptions {
        target: req.target.clone(),
        target_platform: crate::platform::target(req)?,
        ..StageOptions::default()
    };
    let expand = |opts: &StageOptions| {
        kiln_dockerfile::stages::stages(&ast, &req.dockerfile, &req.build_args, opts)
            .map_err(render)
    };
    let first = expand(&opts)?;
    let target = first.target(req.target.as_deref()).map_err(render)?;
    let graph = StageGraph::new(&first)?;
    crate::platform::check(req, &first, &graph.needed(target)?)?;
    opts.image_env = base_envs(store, req, &first, &graph, target)?;
    let df = expand(&opts)?;
    let waves = StageGraph::new(&df)?.waves(target)?;
    Ok((df, target, waves, opts.image_env))
}

/// The ENV of each base image the needed stages start from. Every image they read (bases and
/// `--from` images) must be in the store, or be fetched into it by the request's fetcher: a
/// missing one fails the build before any step runs.
fn base_envs(
    store: &Store,
    req: &BuildRequest,
    df: &Dockerfile,
    graph: &StageGraph,
    target: usize,
) -> Result<ImageEnv> {
    let mut envs = BTreeMap::new();
    let mut loader = BaseLoader::new(store, req);
    for i in graph.needed(target)? {
        let (Some(stage), Some(node)) = (df.stages.get(i), graph.nodes.get(i)) else {
            continue;
        };
        for name in &node.images {
            let image = loader.load(name)?;
            if stage.base == Base::Image(name.clone()) {
                let env = crate::metadata::onbuild_env(
                    &image.config,
                    env_pairs(&image),
                    &req.build_args,
                )?;
                envs.insert(name.clone(), env);
            }
        }
    }
    Ok(envs)
}

fn env_pairs(image: &BaseImage) -> Vec<(String, String)> {
    crate::metadata::runtime(&image.config)
        .env()
        .clone()
        .unwrap_or_default()
        .iter()
        .map(|e| match e.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (e.clone(), String::new()),
        })
        .collect()
}

fn executor(runtime: &Runtime, state_dir: PathBuf) -> Box<dyn Executor> {
    match runtime {
        Runtime::Libcontainer { helper } => {
            let exec = LibcontainerExecutor::new(state_dir);
            Box::new(match helper {
                Some(h) => exec.with_helper(h),
                None => exec,
            })
        }
        Runtime::Runc { binary } => {
            let exec = RuncExecutor::new(state_dir);
            Box::new(match binary {
                Some(b) => exec.with_runc(b),
                None => exec,
            })
        }
    }
}

/// Runs one wave's stages, at most `jobs` at a time, each on its own thread.
fn run_wave(shared: &Shared<'_>, wave: &[usize]) -> Result<()> {
    let jobs = match shared.req.jobs {
        0 => wave.len().max(1),
        n => n,
    };
    for chunk in wave.chunks(jobs) {
        let outcomes: Vec<(usize, Result<StageOutput>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|&i| (i, scope.spawn(move || run_stage(shared, i))))
                .collect();
            handles
                .into_iter()
                .map(|(i, h)| (i, h.join().unwrap_or(Err(BuildError::WorkerPanicked))))
                .collect()
        });
        let mut results = shared.results.lock().unwrap_or_else(|p| p.into_inner());
        for (i, outcome) in outcomes {
            let output = outcome?;
            if let Some(slot) = results.get_mut(i) {
                *slot = Some(Arc::new(output));
            }
        }
    }
    Ok(())
}

/// Collects the stored images and reports the summary.
fn finish(shared: &Shared<'_>) -> Result<BuildResult> {
    let image = shared.stage_output(shared.target)?.record.clone();
    let results = shared
        .results
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let stages: Vec<BuiltStage> = results
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != shared.target)
        .filter_map(|(i, r)| r.as_ref().map(|o| (i, o)))
        .map(|(index, o)| BuiltStage {
            index,
            name: o.name.clone(),
            image: o.record.clone(),
        })
        .collect();
    let summary = BuildSummary {
        image_id: image.id.clone(),
        tags: image.tags.iter().map(ToString::to_string).collect(),
        // `ImageRecord::size` is the size `docker images` shows (layer content).
        final_size: image.size,
        stages: stages
            .iter()
            .map(|s| StageSize {
                stage: s.name.clone(),
                size: s.image.size,
            })
            .collect(),
    };
    shared.progress(|p| p.summary(&summary));
    let cache = crate::cache_export::collect(shared, &results);
    Ok(BuildResult {
        image,
        stages,
        cache,
    })
}
