//! `weir validate`: check a workflow file completely (plugins included) and list every problem.

use std::path::PathBuf;
use std::process::ExitCode;

use super::EXIT_ERROR;
use super::data::DataArgs;
use crate::Host;
use crate::registry::{self, RegistryError};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The workflow file.
    workflow: PathBuf,
}

pub(crate) async fn execute(host: &Host, data: &DataArgs, args: Args) -> anyhow::Result<ExitCode> {
    let store = data.store().await?;
    match registry::check_file(host, store.as_ref(), &args.workflow).await {
        Ok(loaded) => {
            let wf = &loaded.workflow;
            outln!(
                "{} is valid: {} with {} steps ({})",
                args.workflow.display(),
                wf.id(),
                wf.steps.len(),
                wf.step_ids(" → ")
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(RegistryError::Invalid(diagnostics)) => {
            eprintln!("{diagnostics}");
            Ok(ExitCode::from(EXIT_ERROR))
        }
        Err(RegistryError::Store(e)) => Err(e),
    }
}
