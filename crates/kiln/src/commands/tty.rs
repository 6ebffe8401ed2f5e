//! Live progress for a terminal, in the style of BuildKit's `--progress=tty`: a ticking
//! `[+] Building 4.2s (3/7)` header, one live line per running step with its latest output
//! line and timer, and a permanent ` => [stage 2/5] RUN …  1.3s` line once a step ends.
//!
//! Finished steps are printed above the live area instead of staying as bars, so a build of
//! hundreds of steps never needs more rows than it has steps running at once.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use kiln_build::{BuildSummary, Progress, StepInfo, StepOutcome, size_lines};

/// Lines of a failed step's output shown under its ERROR line.
const ERROR_TAIL: usize = 10;

/// How often the header's clock and the step timers are redrawn.
const TICK: Duration = Duration::from_millis(100);

/// Renders build progress live on the terminal behind stderr.
pub struct TtyProgress {
    multi: MultiProgress,
    header: ProgressBar,
    steps: HashMap<usize, LiveStep>,
}

struct LiveStep {
    /// `[builder 2/5] RUN make`.
    title: String,
    bar: ProgressBar,
    started: Instant,
    /// Output after the last newline.
    partial: Vec<u8>,
    /// The last complete output lines, for the live line and an error report.
    tail: VecDeque<String>,
}

impl TtyProgress {
    /// A display on stderr; callers check that stderr is a terminal first.
    pub fn new() -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let header = multi.add(ProgressBar::new(0));
        header.set_style(style("[+] Building {secs} ({pos}/{len})"));
        header.enable_steady_tick(TICK);
        Self {
            multi,
            header,
            steps: HashMap::new(),
        }
    }

    /// Prints a permanent line above the live area.
    fn print(&self, line: &str) {
        let _ = self.multi.println(line);
    }
}

/// A bar style whose `{secs}` is the elapsed time as BuildKit shows it (`1.3s`).
fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
        .with_key(
            "secs",
            |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.1}s", state.elapsed().as_secs_f64());
            },
        )
}

impl Progress for TtyProgress {
    fn step_started(&mut self, step: &StepInfo) {
        self.header.inc_length(1);
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(style(" => {wide_msg} {secs}"));
        let title = format!("{} {}", step.label(), step.text);
        bar.set_message(title.clone());
        bar.enable_steady_tick(TICK);
        let live = LiveStep {
            title,
            bar,
            started: Instant::now(),
            partial: Vec::new(),
            tail: VecDeque::new(),
        };
        self.steps.insert(step.id, live);
    }

    fn step_output(&mut self, step: usize, data: &[u8]) {
        let Some(live) = self.steps.get_mut(&step) else {
            return;
        };
        live.partial.extend_from_slice(data);
        while let Some(end) = live.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = live.partial.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line).trim_end().to_string();
            if live.tail.len() == ERROR_TAIL {
                live.tail.pop_front();
            }
            live.tail.push_back(text);
        }
        if let Some(last) = live.tail.back() {
            live.bar.set_message(format!("{} | {last}", live.title));
        }
    }

    fn step_finished(&mut self, step: usize, outcome: &StepOutcome) {
        let Some(mut live) = self.steps.remove(&step) else {
            return;
        };
        self.multi.remove(&live.bar);
        live.bar.finish_and_clear();
        self.header.inc(1);
        let secs = format!("{:.1}s", live.started.elapsed().as_secs_f64());
        match outcome {
            StepOutcome::Done => self.print(&format!(" => {}  {secs}", live.title)),
            StepOutcome::Cached => self.print(&format!(" => CACHED {}  0.0s", live.title)),
            // The build's error (printed once the display is gone) carries the message.
            StepOutcome::Failed(_) => {
                if !live.partial.is_empty() {
                    live.tail
                        .push_back(String::from_utf8_lossy(&live.partial).to_string());
                }
                self.print(&format!(" => ERROR {}  {secs}", live.title));
                for line in &live.tail {
                    self.print(&format!("    > {line}"));
                }
            }
        }
    }

    fn warning(&mut self, text: &str) {
        self.print(&format!("WARNING: {text}"));
    }

    fn summary(&mut self, summary: &BuildSummary) {
        self.print(&format!(" => writing image {} done", summary.image_id));
        for tag in &summary.tags {
            self.print(&format!(" => naming to {tag} done"));
        }
        self.header
            .set_style(style("[+] Building {secs} ({pos}/{len}) FINISHED"));
        self.header.finish();
        for line in size_lines(summary) {
            self.print(&line);
        }
    }
}

impl Drop for TtyProgress {
    /// Leaves the header's final time on screen, even when the build failed.
    fn drop(&mut self) {
        for live in self.steps.values() {
            live.bar.finish_and_clear();
        }
        if !self.header.is_finished() {
            self.header.abandon();
        }
    }
}
