//! `weir monitor`: what each step of a workflow has seen and answered, from the profiles
//! the journal keeps with every step result, and whether it drifted from its baseline (see
//! `monitor_drift.rs`).

use std::process::ExitCode;
use std::time::Duration;

use comfy_table::Table;
use comfy_table::presets::UTF8_BORDERS_ONLY;

use super::args::parse_duration;
use super::data::DataArgs;
use super::{EXIT_ERROR, monitor_drift, render};
use crate::Host;
use crate::monitor::drift::Status;
use crate::monitor::summary::{self, FeatureSummary};
use crate::store::{BaselinePin, ProfileFilter};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Per step and feature: results counted, mean and percentiles, or the most frequent values.
    Profile {
        /// The workflow: `name`, or `name@version` for one version only.
        workflow: String,
        /// Only this step.
        #[arg(long)]
        step: Option<String>,
        /// Only windows from this long ago on, e.g. 24h or 7d (all when not given).
        #[arg(long, value_parser = parse_duration)]
        since: Option<Duration>,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Per step: drifted or not from its baseline, and each feature's statistic, score,
    /// threshold, n and verdict.
    Status {
        /// The workflow.
        workflow: String,
        /// Only this step.
        #[arg(long)]
        step: Option<String>,
        /// JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Exit 1 when a step's status reaches --fail-on (for cron or CI), 0 otherwise.
    Check {
        /// The workflow.
        workflow: String,
        /// The status that fails the check.
        #[arg(long, value_enum, default_value_t = FailOn::Alert)]
        fail_on: FailOn,
    },
    /// The baselines steps are compared with: show them, or pin one.
    #[command(subcommand)]
    Baseline(BaselineCommand),
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum FailOn {
    /// A step in `warn` or `alert`.
    Warn,
    /// A step in `alert`.
    Alert,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum BaselineCommand {
    /// Each version's baseline per step, and every pin made.
    Show {
        /// The workflow.
        workflow: String,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Pin a version's baseline: its first windows holding N results, or the windows of a
    /// time range (of this version or, with --of, another's). Every pin is journaled.
    Set {
        /// The workflow version: `name@version`.
        workflow: String,
        /// The first windows that together hold this many results.
        #[arg(long, conflicts_with_all = ["from", "to"])]
        first: Option<i64>,
        /// Windows starting at or after this time (RFC 3339, e.g. 2026-12-01T00:00:00Z).
        #[arg(long, requires = "to", value_parser = parse_time)]
        from: Option<i64>,
        /// Windows starting before this time.
        #[arg(long, requires = "from", value_parser = parse_time)]
        to: Option<i64>,
        /// Whose windows: another version of the workflow (default: this one).
        #[arg(long, value_name = "VERSION")]
        of: Option<String>,
        /// Why, for the record.
        #[arg(long, default_value = "")]
        reason: String,
        /// Who pins it (default: $USER).
        #[arg(long)]
        by: Option<String>,
    },
}

/// A time as ms since the epoch.
fn parse_time(text: &str) -> Result<i64, String> {
    humantime::parse_rfc3339_weak(text)
        .map_err(|e| format!("{text:?} is not a time such as 2026-12-01T09:00:00Z: {e}"))
        .map(|t| {
            t.duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64)
        })
}

pub(crate) async fn execute(
    _host: &Host,
    data: &DataArgs,
    command: Command,
) -> anyhow::Result<ExitCode> {
    let store = data.existing_store().await?;
    // What the runs journaled result by result is folded first: the reads are then of the
    // counts (they would add the pending results up either way).
    crate::store::profiles::fold_all(store.monitor()).await?;
    match command {
        Command::Profile {
            workflow,
            step,
            since,
            json,
        } => {
            let (workflow, version) = match workflow.split_once('@') {
                Some((name, version)) => (name.to_string(), Some(version.to_string())),
                None => (workflow, None),
            };
            let filter = ProfileFilter {
                workflow: workflow.clone(),
                version,
                step_id: step,
                since_ms: since.map(|ago| crate::store::now_ms() - ago.as_millis() as i64),
                until_ms: None,
            };
            let summaries = summary::summarize(&store.monitor().profiles(&filter).await?);
            if json {
                outln!("{}", render::pretty_json(&summaries)?);
                return Ok(ExitCode::SUCCESS);
            }
            if summaries.is_empty() {
                outln!(
                    "no step of {workflow} has a profile yet (its steps' results are counted as runs finish them)"
                );
                return Ok(ExitCode::SUCCESS);
            }
            outln!("{}", table(&summaries));
            Ok(ExitCode::SUCCESS)
        }
        Command::Status {
            workflow,
            step,
            json,
        } => monitor_drift::print_status(store.as_ref(), &workflow, step.as_deref(), json).await,
        Command::Check { workflow, fail_on } => {
            let fail_on = match fail_on {
                FailOn::Warn => Status::Warn,
                FailOn::Alert => Status::Alert,
            };
            monitor_drift::check(store.as_ref(), &workflow, fail_on).await
        }
        Command::Baseline(BaselineCommand::Show { workflow, json }) => {
            monitor_drift::show_baselines(store.as_ref(), &workflow, json).await
        }
        Command::Baseline(BaselineCommand::Set {
            workflow,
            first,
            from,
            to,
            of,
            reason,
            by,
        }) => {
            let Some((name, version)) = workflow.split_once('@') else {
                eprintln!(
                    "error: `weir monitor baseline set` pins one version: give `{workflow}@<version>`"
                );
                return Ok(ExitCode::from(EXIT_ERROR));
            };
            let source = of.unwrap_or_else(|| version.to_string());
            for v in [version, source.as_str()] {
                if store.get_workflow(name, Some(v)).await?.is_none() {
                    eprintln!("error: no workflow {name}@{v} is registered");
                    return Ok(ExitCode::from(EXIT_ERROR));
                }
            }
            let (from_ms, to_ms) = match (first, from, to) {
                (_, Some(from), Some(to)) if from < to => (from, to),
                (_, Some(_), Some(_)) => {
                    eprintln!("error: --from must be before --to");
                    return Ok(ExitCode::from(EXIT_ERROR));
                }
                (first, _, _) => {
                    let first = first.unwrap_or(crate::monitor::drift::DEFAULT_BASELINE_RESULTS);
                    if first < 1 {
                        eprintln!(
                            "error: --first is {first}: give a number of results, at least 1"
                        );
                        return Ok(ExitCode::from(EXIT_ERROR));
                    }
                    let rows = store
                        .monitor()
                        .profiles(&ProfileFilter {
                            workflow: name.to_string(),
                            version: Some(source.clone()),
                            ..ProfileFilter::default()
                        })
                        .await?;
                    let settings = crate::monitor::drift::Settings {
                        baseline_results: first,
                        ..crate::monitor::status::settings_of(store.as_ref(), name, &source).await
                    };
                    match crate::monitor::status::first_windows(
                        &rows,
                        &source,
                        crate::store::now_ms(),
                        &settings,
                    ) {
                        Some(span) => span,
                        None => {
                            eprintln!(
                                "error: {name}@{source} has no closed windows holding {first} results yet"
                            );
                            return Ok(ExitCode::from(EXIT_ERROR));
                        }
                    }
                }
            };
            let pin = BaselinePin {
                workflow: name.to_string(),
                version: version.to_string(),
                from_ms,
                to_ms,
                source_version: source,
                pinned_by: by
                    .or_else(|| std::env::var("USER").ok())
                    .unwrap_or_else(|| "cli".into()),
                pinned_ms: crate::store::now_ms(),
                reason,
            };
            monitor_drift::pin(store.as_ref(), pin).await
        }
    }
}

/// One row per feature: its counts and what they show.
fn table(summaries: &[FeatureSummary]) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY).set_header([
        "version",
        "step",
        "feature",
        "n",
        "missing",
        "mean",
        "p50",
        "p90",
        "p99",
        "most seen",
    ]);
    let number = |v: Option<f64>| v.map(short).unwrap_or_default();
    for s in summaries {
        let top: Vec<String> = s
            .top
            .iter()
            .map(|t| format!("{} {:.0}%", t.value, t.share * 100.0))
            .collect();
        table.add_row([
            s.version.clone(),
            s.step_id.clone(),
            s.feature.clone(),
            s.n.to_string(),
            s.missing.to_string(),
            number(s.mean),
            number(s.p50),
            number(s.p90),
            number(s.p99),
            top.join(", "),
        ]);
    }
    table
}

/// A number in at most four significant digits.
fn short(v: f64) -> String {
    if v != 0.0 && v.abs() < 0.01 {
        format!("{v:.2e}")
    } else if v.fract() == 0.0 || v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}
