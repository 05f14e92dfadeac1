//! The live view of a run's steps. On a terminal: one line per step, redrawn in place as it
//! goes from waiting to running (with a spinner and its elapsed time) to its outcome.
//! Anywhere else (a pipe, a file, CI): one plain line per event, nothing redrawn.

use std::collections::HashMap;
use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::runner::Progress;
use crate::text::escape_for_terminal as shown;

/// How often a running step's spinner and clock move.
const TICK: Duration = Duration::from_millis(80);

pub(crate) enum Live {
    /// Print nothing (`--json`).
    Quiet,
    /// One line per event.
    Plain,
    /// A redrawn line per step.
    Terminal {
        /// Owns the drawing of every bar.
        _multi: MultiProgress,
        bars: HashMap<String, ProgressBar>,
    },
}

impl Live {
    /// The view for a run of `steps` (in workflow order): redrawn on a terminal, plain
    /// lines otherwise, nothing when `quiet`.
    pub(crate) fn new(steps: &[String], quiet: bool) -> Self {
        if quiet {
            return Self::Quiet;
        }
        if !std::io::stderr().is_terminal() {
            return Self::Plain;
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let width = steps.iter().map(String::len).max().unwrap_or(0);
        let bars = steps
            .iter()
            .map(|step| {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(done_style());
                bar.set_prefix(format!("{step:<width$}"));
                bar.set_message("· waiting");
                (step.clone(), bar)
            })
            .collect();
        Self::Terminal {
            _multi: multi,
            bars,
        }
    }

    /// Shows one event.
    pub(crate) fn show(&mut self, event: &Progress) {
        match self {
            Self::Quiet => {}
            Self::Plain => eprintln!("{}", plain_line(event)),
            Self::Terminal { bars, .. } => {
                let step = match event {
                    Progress::Started { step, .. }
                    | Progress::Succeeded { step, .. }
                    | Progress::Failed { step, .. }
                    | Progress::Skipped { step, .. } => step,
                };
                let Some(bar) = bars.get(step) else { return };
                match event {
                    Progress::Started { attempt, .. } => {
                        bar.reset_elapsed();
                        bar.set_style(running_style());
                        bar.set_message(if *attempt > 1 {
                            format!("running (attempt {attempt})")
                        } else {
                            "running".to_string()
                        });
                        bar.enable_steady_tick(TICK);
                    }
                    _ => {
                        bar.disable_steady_tick();
                        bar.set_style(done_style());
                        bar.finish_with_message(outcome(event));
                    }
                }
            }
        }
    }

    /// Leaves the final view on screen: every line stays, steps that never ran say so.
    pub(crate) fn finish(self) {
        if let Self::Terminal {
            _multi: multi,
            bars,
        } = self
        {
            for bar in bars.values().filter(|b| !b.is_finished()) {
                bar.disable_steady_tick();
                bar.set_style(done_style());
                bar.finish_with_message("· not run");
            }
            // The last line is drawn without a newline; end it so what follows starts clean.
            drop(bars);
            drop(multi);
            eprintln!();
        }
    }
}

fn running_style() -> ProgressStyle {
    ProgressStyle::with_template("  {spinner} {prefix} {msg} {elapsed}").expect("a valid template")
}

fn done_style() -> ProgressStyle {
    ProgressStyle::with_template("    {prefix} {msg}").expect("a valid template")
}

/// The outcome of a finished step, for its line.
fn outcome(event: &Progress) -> String {
    match event {
        Progress::Started { .. } => String::new(),
        Progress::Succeeded {
            elapsed,
            route,
            confidence,
            ..
        } => format!("✓ {elapsed:.1?}{}", details(route.as_deref(), *confidence)),
        Progress::Failed { failure, .. } => format!("✗ {}", shown(failure)),
        Progress::Skipped { reason, .. } => format!("– skipped: {}", shown(reason)),
    }
}

fn details(route: Option<&str>, confidence: Option<f64>) -> String {
    let mut text = String::new();
    if let Some(route) = route {
        text.push_str(&format!(" · route {}", shown(route)));
    }
    if let Some(c) = confidence {
        text.push_str(&format!(" · confidence {c:.2}"));
    }
    text
}

/// One event as a plain line.
fn plain_line(event: &Progress) -> String {
    match event {
        Progress::Started { step, attempt } if *attempt > 1 => {
            format!("  ▸ {step} (attempt {attempt})")
        }
        Progress::Started { step, .. } => format!("  ▸ {step}"),
        Progress::Succeeded {
            step,
            elapsed,
            route,
            confidence,
        } => format!(
            "  ✓ {step} {elapsed:.1?}{}",
            details(route.as_deref(), *confidence)
        ),
        Progress::Failed { step, failure } => format!("  ✗ {step}: {}", shown(failure)),
        Progress::Skipped { step, reason } => format!("  – {step} skipped: {}", shown(reason)),
    }
}
