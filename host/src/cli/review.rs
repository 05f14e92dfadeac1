//! `weir review`: the human review queue. List and show parked runs' reviews; approve, edit
//! or reject one, which is recorded (who, when, before and after) and sends the run on.

use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::Value;

use super::args::read_input;
use super::data::DataArgs;
use super::{EXIT_AWAITING_REVIEW, EXIT_ERROR, EXIT_STEP_FAILED, summary};
use crate::Host;
use crate::runner::ReviewError;
use crate::store::{Decided, Decision, ReviewRecord, ReviewStatus, RunStatus};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// List reviews (pending ones by default).
    List {
        /// `pending`, `approved`, `edited`, `rejected`, `closed` (its run was cancelled), or `all`.
        #[arg(long, default_value = "pending")]
        status: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one review: why, and what the reviewer needs.
    Show {
        /// Review id.
        id: String,
    },
    /// The step's output stands; the run goes on.
    Approve {
        /// Review id.
        id: String,
        #[command(flatten)]
        who: Who,
    },
    /// Replace the step's output (checked against its output schema); the run goes on with it.
    Edit {
        /// Review id.
        id: String,
        /// The new output: a JSON file, `-` for stdin, or JSON text.
        #[arg(long)]
        output: String,
        #[command(flatten)]
        who: Who,
    },
    /// Fail the run.
    Reject {
        /// Review id.
        id: String,
        /// Why; recorded with the run's failure.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        who: Who,
    },
}

#[derive(Debug, clap::Args)]
pub(crate) struct Who {
    /// Who decides [default: $USER].
    #[arg(long)]
    by: Option<String>,
    /// A note for the audit record.
    #[arg(long)]
    note: Option<String>,
}

impl Who {
    fn decided(self) -> Decided {
        Decided {
            by: self
                .by
                .or_else(|| std::env::var("USER").ok())
                .unwrap_or_else(|| "unknown".to_string()),
            note: self.note,
        }
    }
}

pub(crate) async fn execute(
    host: &Host,
    data: &DataArgs,
    command: Command,
) -> anyhow::Result<ExitCode> {
    let store = data.existing_store().await?;
    let (id, decision, who) = match command {
        Command::List { status, json } => {
            let status = match status.as_str() {
                "all" => None,
                s => Some(s.parse::<ReviewStatus>().map_err(anyhow::Error::msg)?),
            };
            let reviews = store.reviews(status, None).await?;
            if json {
                outln!("{}", super::render::pretty_json(&reviews)?);
            } else if reviews.is_empty() {
                eprintln!("no reviews");
            } else {
                for r in &reviews {
                    outln!(
                        "{}  run {}  step {}  {}  {}",
                        r.id,
                        r.run_id,
                        r.step_id,
                        r.status,
                        crate::text::escape_for_terminal(&r.reason)
                    );
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        Command::Show { id } => {
            let review = store
                .get_review(&id)
                .await?
                .with_context(|| format!("no review {id}"))?;
            print_review(&review)?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Approve { id, who } => (id, Decision::Approve, who),
        Command::Edit { id, output, who } => {
            let (text, origin) = read_input(&output)?;
            let value: Value =
                serde_json::from_str(&text).with_context(|| format!("output from {origin}"))?;
            (id, Decision::Edit(value), who)
        }
        Command::Reject { id, reason, who } => (id, Decision::Reject(reason), who),
    };
    let runner = data.runner_on(host, store.clone())?;
    let review = match runner.decide(&id, decision, who.decided()).await {
        Ok(review) => review,
        Err(
            e @ (ReviewError::NotFound(_)
            | ReviewError::Conflict(_)
            | ReviewError::InvalidOutput { .. }),
        ) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(EXIT_ERROR));
        }
        Err(ReviewError::Store(e)) => return Err(e),
    };
    eprintln!(
        "review {} {} by {}",
        review.id,
        review.status,
        review.decided_by.as_deref().unwrap_or("?")
    );
    let run = runner.execute(&review.run_id).await?;
    let steps = store.steps(&run.id).await?;
    let attempts = store.attempts(&run.id).await?;
    let calls = store.model_calls(&run.id).await?;
    eprintln!("{}", summary::table(&steps, &attempts, &calls));
    Ok(match run.status {
        RunStatus::Succeeded => {
            outln!("{}", super::render::pretty_json(&run.output)?);
            ExitCode::SUCCESS
        }
        RunStatus::AwaitingReview => {
            eprintln!("{}", summary::failure_line(&run));
            ExitCode::from(EXIT_AWAITING_REVIEW)
        }
        _ => {
            eprintln!("{}", summary::failure_line(&run));
            ExitCode::from(EXIT_STEP_FAILED)
        }
    })
}

fn print_review(review: &ReviewRecord) -> anyhow::Result<()> {
    outln!("review   {}", review.id);
    outln!("run      {}", review.run_id);
    outln!("step     {}", review.step_id);
    outln!("status   {}", review.status);
    outln!(
        "reason   {}",
        crate::text::escape_for_terminal(&review.reason)
    );
    if let (Some(at), Some(action)) = (review.expires_ms, &review.default_action) {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(at.max(0) as u64);
        outln!(
            "timeout  {action} at {}",
            humantime::format_rfc3339_seconds(at)
        );
    }
    if let Some(by) = &review.decided_by {
        outln!(
            "decided  by {by}{}",
            review
                .note
                .as_ref()
                .map(|n| format!(": {}", crate::text::escape_for_terminal(n)))
                .unwrap_or_default()
        );
    }
    outln!("data\n{}", super::render::pretty_json(&review.data)?);
    if review.status != ReviewStatus::Pending {
        outln!("before\n{}", super::render::pretty_json(&review.before)?);
        outln!("after\n{}", super::render::pretty_json(&review.after)?);
    }
    Ok(())
}
