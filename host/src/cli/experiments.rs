//! `weir experiments`: the evaluations `weir eval` journaled, listed and read again.

use std::process::ExitCode;

use comfy_table::Table;
use comfy_table::presets::UTF8_BORDERS_ONLY;

use super::EXIT_ERROR;
use super::data::DataArgs;
use super::render;
use crate::Host;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// List experiments, newest first.
    List {
        /// Only this workflow's.
        #[arg(long)]
        workflow: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print one experiment, cases included, as JSON (what `weir eval --json` printed).
    Show {
        /// The experiment id.
        id: String,
    },
}

pub(crate) async fn execute(
    _host: &Host,
    data: &DataArgs,
    command: Command,
) -> anyhow::Result<ExitCode> {
    let store = data.existing_store().await?;
    let journal = store.experiments();
    match command {
        Command::List {
            workflow,
            limit,
            json,
        } => {
            let found = journal.list_experiments(workflow.as_deref(), limit).await?;
            if json {
                outln!("{}", render::pretty_json(&found)?);
                return Ok(ExitCode::SUCCESS);
            }
            let mut table = Table::new();
            table.load_preset(UTF8_BORDERS_ONLY).set_header([
                "experiment",
                "workflow",
                "candidate",
                "cases",
                "output agreement",
                "route agreement",
                "errors",
            ]);
            for e in &found {
                let s = &e.summary;
                let rate = |r: &serde_json::Value| format!("{}/{}", r["hits"], r["n"]);
                table.add_row([
                    e.id.clone(),
                    e.workflow.clone(),
                    e.candidate.clone(),
                    s["cases"].to_string(),
                    rate(&s["output_agreement"]),
                    rate(&s["route_agreement"]),
                    s["errors"].to_string(),
                ]);
            }
            outln!("{table}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Show { id } => match journal.get_experiment(&id).await? {
            Some(experiment) => {
                outln!("{}", render::pretty_json(&experiment)?);
                Ok(ExitCode::SUCCESS)
            }
            None => {
                eprintln!("error: no experiment {id}");
                Ok(ExitCode::from(EXIT_ERROR))
            }
        },
    }
}
