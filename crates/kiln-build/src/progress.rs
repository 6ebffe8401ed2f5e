//! Build progress: the events a build reports, and a plain-text renderer in BuildKit's
//! `--progress=plain` style (`#N [stage 2/5] RUN …`, output under the header, `#N DONE 0.4s`,
//! `#N CACHED` for a step served by the step cache).

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use kiln_content::Digest;

/// One filesystem step (or a stage's FROM) as the progress display names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepInfo {
    /// Build-wide step number (`#N`), in start order.
    pub id: usize,
    /// The stage's display name (`builder`, `stage-2`).
    pub stage: String,
    /// Position in the stage, FROM being 1.
    pub index: usize,
    /// Steps in the stage, FROM included.
    pub total: usize,
    /// The instruction as written after expansion (`RUN echo hi`).
    pub text: String,
}

impl StepInfo {
    /// `[builder 2/5]`, the label BuildKit prints before a step.
    pub fn label(&self) -> String {
        format!("[{} {}/{}]", self.stage, self.index, self.total)
    }
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// The step completed.
    Done,
    /// The step's result came from the step cache: nothing ran (BuildKit's `CACHED`).
    Cached,
    /// The step failed; the message is the build's error.
    Failed(String),
}

/// A built stage and its image size, for the summary's comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageSize {
    /// The stage's display name.
    pub stage: String,
    /// The stage image's size as `docker images` counts it (layer content).
    pub size: u64,
}

/// What the build produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSummary {
    /// The final image's ID (config digest).
    pub image_id: Digest,
    /// Tags given to it.
    pub tags: Vec<String>,
    /// The final image's size as `docker images` counts it (layer content).
    pub final_size: u64,
    /// Every other stage that was built, in stage order.
    pub stages: Vec<StageSize>,
}

/// Receives build events. Steps of parallel stages interleave: events carry the step id.
pub trait Progress: Send {
    /// A step starts.
    fn step_started(&mut self, step: &StepInfo);
    /// A chunk of a RUN step's output (lines may span chunks).
    fn step_output(&mut self, step: usize, data: &[u8]);
    /// A step ended.
    fn step_finished(&mut self, step: usize, outcome: &StepOutcome);
    /// A build check or other warning.
    fn warning(&mut self, text: &str);
    /// The build succeeded.
    fn summary(&mut self, summary: &BuildSummary);
}

/// Plain-text progress written to any stream (stderr for `kiln build`).
pub struct PlainProgress<W: Write + Send> {
    out: W,
    steps: HashMap<usize, PlainStep>,
}

struct PlainStep {
    label: String,
    started: Instant,
    /// Output after the last newline, held until the line is complete.
    partial: Vec<u8>,
}

impl<W: Write + Send> PlainProgress<W> {
    /// Renders to `out`. Write errors are ignored: progress must never fail a build.
    pub fn new(out: W) -> Self {
        Self {
            out,
            steps: HashMap::new(),
        }
    }

    /// The underlying stream.
    pub fn into_inner(self) -> W {
        self.out
    }

    fn line(&mut self, id: usize, text: &[u8]) {
        let Some(step) = self.steps.get(&id) else {
            return;
        };
        let secs = step.started.elapsed().as_secs_f64();
        let text = String::from_utf8_lossy(text);
        let _ = writeln!(self.out, "#{id} {} {secs:.3} {text}", step.label);
    }
}

impl<W: Write + Send> Progress for PlainProgress<W> {
    fn step_started(&mut self, step: &StepInfo) {
        let _ = writeln!(self.out, "#{} {} {}", step.id, step.label(), step.text);
        self.steps.insert(
            step.id,
            PlainStep {
                label: step.label(),
                started: Instant::now(),
                partial: Vec::new(),
            },
        );
    }

    fn step_output(&mut self, step: usize, data: &[u8]) {
        let Some(state) = self.steps.get_mut(&step) else {
            return;
        };
        state.partial.extend_from_slice(data);
        let buffered = std::mem::take(&mut state.partial);
        let mut lines = buffered.split(|&b| b == b'\n').collect::<Vec<_>>();
        let rest = lines.pop().unwrap_or_default().to_vec();
        for line in lines {
            self.line(step, line);
        }
        if let Some(state) = self.steps.get_mut(&step) {
            state.partial = rest;
        }
    }

    fn step_finished(&mut self, step: usize, outcome: &StepOutcome) {
        let Some(state) = self.steps.remove(&step) else {
            return;
        };
        if !state.partial.is_empty() {
            let secs = state.started.elapsed().as_secs_f64();
            let text = String::from_utf8_lossy(&state.partial);
            let _ = writeln!(self.out, "#{step} {} {secs:.3} {text}", state.label);
        }
        let elapsed = seconds(state.started.elapsed());
        let _ = match outcome {
            StepOutcome::Done => writeln!(self.out, "#{step} DONE {elapsed}"),
            StepOutcome::Cached => writeln!(self.out, "#{step} CACHED"),
            StepOutcome::Failed(message) => {
                writeln!(self.out, "#{step} ERROR {elapsed}: {message}")
            }
        };
    }

    fn warning(&mut self, text: &str) {
        let _ = writeln!(self.out, "WARNING: {text}");
    }

    fn summary(&mut self, summary: &BuildSummary) {
        let _ = writeln!(self.out, "writing image {} done", summary.image_id);
        for tag in &summary.tags {
            let _ = writeln!(self.out, "naming to {tag} done");
        }
        for line in size_lines(summary) {
            let _ = writeln!(self.out, "{line}");
        }
    }
}

fn seconds(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// `builder 325 MB → final 0.9 MB, 99.7% smaller`, one line per built stage.
pub fn size_lines(summary: &BuildSummary) -> Vec<String> {
    let fin = format_size(summary.final_size);
    let mut lines = vec![format!("final image: {fin}")];
    for stage in &summary.stages {
        let change = if stage.size == 0 {
            String::new()
        } else if summary.final_size <= stage.size {
            let pct = 100.0 * (stage.size - summary.final_size) as f64 / stage.size as f64;
            format!(", {pct:.1}% smaller")
        } else {
            let pct = 100.0 * (summary.final_size - stage.size) as f64 / stage.size as f64;
            format!(", {pct:.1}% larger")
        };
        lines.push(format!(
            "{} {} → final {fin}{change}",
            stage.stage,
            format_size(stage.size)
        ));
    }
    lines
}

/// Decimal sizes as Docker prints them, one decimal below 10 units (`0.9 MB`, `325 MB`).
pub fn format_size(bytes: u64) -> String {
    let b = bytes as f64;
    let (value, unit) = if b >= 1e9 {
        (b / 1e9, "GB")
    } else if b >= 1e5 {
        (b / 1e6, "MB")
    } else if b >= 1e3 {
        (b / 1e3, "kB")
    } else {
        return format!("{bytes} B");
    };
    if value < 10.0 {
        format!("{value:.1} {unit}")
    } else {
        format!("{value:.0} {unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_docker() {
        assert_eq!(format_size(900_000), "0.9 MB");
        assert_eq!(format_size(325_000_000), "325 MB");
        assert_eq!(format_size(512), "512 B");
        assert_eq!(format_size(2_500_000_000), "2.5 GB");
    }

    #[test]
    fn summary_compares_stages_with_final() {
        let digest: Digest = format!("sha256:{}", "0".repeat(64)).parse().unwrap();
        let s = BuildSummary {
            image_id: digest,
            tags: vec![],
            final_size: 900_000,
            stages: vec![StageSize {
                stage: "builder".into(),
                size: 325_000_000,
            }],
        };
        assert_eq!(
            size_lines(&s)[1],
            "builder 325 MB → final 0.9 MB, 99.7% smaller"
        );
    }

    #[test]
    fn cached_steps_print_cached() {
        let mut p = PlainProgress::new(Vec::new());
        let step = StepInfo {
            id: 7,
            stage: "builder".into(),
            index: 3,
            total: 4,
            text: "RUN make".into(),
        };
        p.step_started(&step);
        p.step_finished(7, &StepOutcome::Cached);
        let text = String::from_utf8(p.into_inner()).unwrap();
        assert_eq!(text, "#7 [builder 3/4] RUN make\n#7 CACHED\n");
    }

    #[test]
    fn output_lines_are_prefixed_and_split() {
        let mut p = PlainProgress::new(Vec::new());
        let step = StepInfo {
            id: 3,
            stage: "left".into(),
            index: 2,
            total: 2,
            text: "RUN echo".into(),
        };
        p.step_started(&step);
        p.step_output(3, b"one\ntw");
        p.step_output(3, b"o\n");
        p.step_finished(3, &StepOutcome::Done);
        let text = String::from_utf8(p.into_inner()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "#3 [left 2/2] RUN echo");
        assert!(lines[1].starts_with("#3 [left 2/2] ") && lines[1].ends_with(" one"));
        assert!(lines[2].ends_with(" two"));
        assert!(lines[3].starts_with("#3 DONE "));
    }
}
