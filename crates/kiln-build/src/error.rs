//! Typed errors of the build engine.

use std::io;
use std::path::{Path, PathBuf};

/// Result alias for build operations.
pub type Result<T, E = BuildError> = std::result::Result<T, E>;

/// Everything that can make a build (or an import) fail.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The Dockerfile does not parse or its stages cannot be resolved; already rendered with
    /// the file name, line and a caret.
    #[error("{0}")]
    Dockerfile(String),
    /// `# check=error=true` and a build check fired.
    #[error("{0}")]
    Lint(String),
    /// The stage graph could not be planned.
    #[error(transparent)]
    Plan(#[from] kiln_plan::PlanError),
    /// A `FROM` or `--from` image is not in the local store.
    #[error("{0}: image not found in the store: import or load it first")]
    ImageNotFound(String),
    /// A `FROM` or `--from` image is not in the local store (or `--pull` asked for a fresh
    /// copy) and fetching it from its registry failed.
    #[error("{image}: image not found in the store, and pulling it failed: {error}")]
    PullFailed {
        /// The image as the Dockerfile names it.
        image: String,
        /// The registry's error.
        error: String,
    },
    /// A RUN step's process exited non-zero.
    #[error(
        "process \"{command}\" did not complete successfully: exit code: {code}{}",
        tail_suffix(tail)
    )]
    RunFailed {
        /// The command line as run (shell included).
        command: String,
        /// Its exit code.
        code: i32,
        /// The last lines of its output.
        tail: String,
    },
    /// An instruction or option kiln does not implement yet.
    #[error("{0} is not supported yet")]
    Unsupported(String),
    /// An instruction that cannot be applied (bad `--change`, bad COPY source, ...).
    #[error("{0}")]
    Invalid(String),
    /// The image store failed.
    #[error(transparent)]
    Store(#[from] kiln_store::StoreError),
    /// The content store failed.
    #[error(transparent)]
    Content(#[from] kiln_content::Error),
    /// An image config or manifest could not be built.
    #[error(transparent)]
    Image(#[from] kiln_image::ImageError),
    /// An image config could not be read.
    #[error(transparent)]
    Config(#[from] kiln_image::ConfigError),
    /// Writing or unpacking a layer failed.
    #[error(transparent)]
    Layer(#[from] kiln_layer::Error),
    /// Preparing a step's root filesystem failed.
    #[error(transparent)]
    Snapshot(#[from] kiln_snapshot::Error),
    /// Running a step's process failed (not a non-zero exit: see [`BuildError::RunFailed`]).
    #[error(transparent)]
    Executor(#[from] kiln_executor::Error),
    /// A COPY, ADD or WORKDIR file operation failed.
    #[error(transparent)]
    FileOp(#[from] kiln_fileop::Error),
    /// Reading the build context failed.
    #[error(transparent)]
    Context(#[from] kiln_context::Error),
    /// A filesystem operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A `--cache-from` cache cannot be read: corrupt, or not a kiln cache.
    #[error("importing cache from {from}: {message}")]
    CacheImport {
        /// The cache, as `--cache-from` named it.
        from: String,
        /// What is wrong with it.
        message: String,
    },
    /// A worker thread panicked (a bug); the build is abandoned.
    #[error("internal error: a build worker panicked")]
    WorkerPanicked,
}

fn tail_suffix(tail: &str) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!("\n--- last lines of output ---\n{tail}")
    }
}

/// Attaches an action and a path to an I/O error.
pub(crate) fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> BuildError {
    let path = path.to_path_buf();
    move |source| BuildError::Io {
        action,
        path,
        source,
    }
}
