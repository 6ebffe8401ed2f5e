//! Shared test setup: a temp store with the conformance bases imported, builds with runc, and
//! a progress recorder with step timestamps.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use kiln_build::{
    BuildError, BuildRequest, BuildResult, BuildSummary, Progress, Runtime, StepInfo, StepOutcome,
};
use kiln_store::Store;

/// Where CI (and `make-bases.sh`) puts the base rootfs tarballs.
pub const BASES: &str = "/var/cache/kiln-test/bases";
const PATH_ENV: &str = "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The conformance data owned by this crate's tests.
pub fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/conformance/cases")
}

/// Fails loudly unless the tests run as root (overlay mounts and containers need it).
pub fn require_root() {
    assert!(
        rustix_is_root(),
        "kiln-build tests need root (overlayfs, runc): run them as root"
    );
}

fn rustix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// A fresh store in a temp dir, kept alive by the returned guard.
pub fn temp_store() -> (tempfile::TempDir, Store) {
    require_root();
    let dir = tempfile::Builder::new()
        .prefix("kiln-build-test-")
        .tempdir_in("/var/tmp")
        .expect("temp dir");
    let store = Store::open(dir.path().join("store")).expect("open store");
    (dir, store)
}

/// Imports one base as the reference images were made (see make-bases.sh's header).
pub fn import_base(store: &Store, file: &str, reference: &str, cmd: &str) {
    let path = Path::new(BASES).join(file);
    let tar = std::fs::File::open(&path).unwrap_or_else(|e| {
        panic!(
            "base tarball {} missing ({e}): run /work/shared/conformance/make-bases.sh {BASES}",
            path.display()
        )
    });
    let changes = [format!("CMD [\"{cmd}\"]"), PATH_ENV.to_string()];
    kiln_build::import_rootfs(store, tar, Some(reference), &changes).expect("import base");
}

pub fn import_busybox(store: &Store) {
    import_base(store, "busybox.tar", "lab/busybox:1", "sh");
}

/// A request building `context` (its `Dockerfile`) with runc.
pub fn request(context: &Path, target: Option<&str>, tag: &str) -> BuildRequest {
    let dockerfile = std::fs::read_to_string(context.join("Dockerfile")).expect("Dockerfile");
    BuildRequest {
        dockerfile,
        dockerfile_name: "Dockerfile".into(),
        dockerfile_path: Some(context.join("Dockerfile")),
        context: context.to_path_buf(),
        build_args: BTreeMap::new(),
        target: target.map(str::to_string),
        tags: vec![tag.to_string()],
        runtime: Runtime::Runc { binary: None },
        ..BuildRequest::default()
    }
}

/// One recorded event.
#[derive(Debug, Clone)]
pub enum Event {
    Started(StepInfo, Instant),
    Output(usize, Vec<u8>),
    Finished(usize, StepOutcome, Instant),
    Warning(String),
    Summary(BuildSummary),
}

/// Records every event with the time it arrived.
#[derive(Clone, Default)]
pub struct Recorder {
    pub events: Arc<Mutex<Vec<Event>>>,
}

impl Recorder {
    fn push(&self, e: Event) {
        self.events.lock().unwrap().push(e);
    }

    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    /// Started steps.
    pub fn steps(&self) -> Vec<StepInfo> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Started(s, _) => Some(s),
                _ => None,
            })
            .collect()
    }

    /// (start, end) of the step with this stage and text prefix.
    pub fn span(&self, stage: &str, prefix: &str) -> (Instant, Instant) {
        let events = self.events();
        let (id, start) = events
            .iter()
            .find_map(|e| match e {
                Event::Started(s, t) if s.stage == stage && s.text.starts_with(prefix) => {
                    Some((s.id, *t))
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("no step {prefix:?} in stage {stage}"));
        let end = events
            .iter()
            .find_map(|e| match e {
                Event::Finished(i, _, t) if *i == id => Some(*t),
                _ => None,
            })
            .unwrap_or_else(|| panic!("step {id} never finished"));
        (start, end)
    }

    /// All output of the build, concatenated.
    pub fn output(&self) -> String {
        let bytes: Vec<u8> = self
            .events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Output(_, d) => Some(d),
                _ => None,
            })
            .flatten()
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl Progress for Recorder {
    fn step_started(&mut self, step: &StepInfo) {
        self.push(Event::Started(step.clone(), Instant::now()));
    }
    fn step_output(&mut self, step: usize, data: &[u8]) {
        self.push(Event::Output(step, data.to_vec()));
    }
    fn step_finished(&mut self, step: usize, outcome: &StepOutcome) {
        self.push(Event::Finished(step, outcome.clone(), Instant::now()));
    }
    fn warning(&mut self, text: &str) {
        self.push(Event::Warning(text.to_string()));
    }
    fn summary(&mut self, summary: &BuildSummary) {
        self.push(Event::Summary(summary.clone()));
    }
}

/// Builds `req`, returning the result and the recorded progress.
pub fn build(store: &Store, req: &BuildRequest) -> (Result<BuildResult, BuildError>, Recorder) {
    let recorder = Recorder::default();
    let mut sink = recorder.clone();
    let result = kiln_build::build(store, req, &mut sink);
    (result, recorder)
}

/// `KEY=value` lines of a case's `case.env`.
pub fn case_env(case: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(case.join("case.env"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Exports the built image as a docker-archive and compares it with the case's
/// `expected.json` through `snapshot.py --diff`; panics with the divergences.
pub fn assert_matches_expected(store: &Store, result: &BuildResult, case: &Path, work: &Path) {
    let archive = work.join("image.tar");
    let file = std::fs::File::create(&archive).expect("archive file");
    let image = kiln_export::ExportImage {
        manifest_digest: result.image.manifest_digest.clone(),
        tags: vec!["docker.io/kiln-test/case:latest".into()],
    };
    kiln_export::export_docker_archive(store.content(), &[image], std::io::BufWriter::new(file))
        .expect("export docker-archive");
    let snapshot = cases_dir().join("../snapshot.py");
    let got = work.join("got.json");
    let status = std::process::Command::new("python3")
        .arg(&snapshot)
        .arg(&archive)
        .arg("--out")
        .arg(&got)
        .status()
        .expect("python3 snapshot.py");
    assert!(
        status.success(),
        "snapshot.py failed on {}",
        archive.display()
    );
    let diff = std::process::Command::new("python3")
        .arg(&snapshot)
        .arg("--diff")
        .arg(case.join("expected.json"))
        .arg(&got)
        .output()
        .expect("python3 snapshot.py --diff");
    assert!(
        diff.status.success(),
        "image differs from BuildKit's for {}:\n{}{}",
        case.display(),
        String::from_utf8_lossy(&diff.stdout),
        String::from_utf8_lossy(&diff.stderr)
    );
}

/// Fails if a build left temp dirs in the store or mounts under its root.
pub fn assert_clean(store: &Store) {
    let leftovers: Vec<_> = std::fs::read_dir(store.root().join("tmp"))
        .expect("store tmp dir")
        .collect();
    assert!(leftovers.is_empty(), "temp dirs left behind: {leftovers:?}");
    let mounts = std::fs::read_to_string("/proc/self/mounts").expect("mounts");
    let root = store.root().to_string_lossy().into_owned();
    assert!(!mounts.contains(&root), "mounts left behind under {root}");
}
