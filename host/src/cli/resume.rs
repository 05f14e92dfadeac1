//! `weir resume`: apply the default action of reviews that timed out, then continue every
//! unfinished run from its last finished step.

use std::process::ExitCode;

use super::data::DataArgs;
use crate::Host;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) async fn execute(host: &Host, data: &DataArgs, _args: Args) -> anyhow::Result<ExitCode> {
    let runner = data.existing_runner(host).await?;
    for review in runner.expire_reviews().await? {
        eprintln!(
            "review {} of run {} timed out: {}",
            review.id, review.run_id, review.status
        );
    }
    let resumed = runner.resume_all().await?;
    if resumed.is_empty() {
        eprintln!("no unfinished runs");
    }
    for run in &resumed {
        outln!(
            "{}  {}@{}  {}",
            run.id,
            run.workflow,
            run.version,
            run.status
        );
    }
    Ok(ExitCode::SUCCESS)
}
