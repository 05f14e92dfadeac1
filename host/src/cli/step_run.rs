//! `weir step run`: one step, one input, the real limits.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use super::args::{parse_count, parse_duration, parse_size, read_input};
use super::data::DataArgs;
use super::{EXIT_STEP_FAILED, render};
use crate::capabilities::config::StepConfig;
use crate::capabilities::files::DirGrant;
use crate::capabilities::http::HostGrant;
use crate::capabilities::model::ModelAccess;
use crate::model::CallScope;
use crate::model::prompt::Prompt;
use crate::{AttemptContext, Grants, Host, Limits, StepSpec};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The plugin: a WebAssembly component implementing weir:step.
    plugin: PathBuf,
    /// The input: a JSON file, `-` for stdin, or JSON text.
    #[arg(long, short)]
    input: String,
    /// A config entry KEY=VALUE; VALUE is JSON if it parses as JSON, else a string. Repeatable.
    #[arg(long = "config", short = 'c', value_name = "KEY=VALUE")]
    config: Vec<String>,
    /// Instructions the step may execute; enables fuel metering for this step.
    #[arg(long, value_parser = parse_count)]
    fuel: Option<u64>,
    /// Wall-clock limit, host calls included.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    timeout: Duration,
    /// Linear memory limit.
    #[arg(long, value_parser = parse_size, default_value = "256MiB")]
    memory: u64,
    /// Largest output payload.
    #[arg(long, value_parser = parse_size, default_value = "1MiB")]
    output_limit: u64,
    /// Grant a directory: HOST_DIR:GUEST_DIR[:ro|rw] (read-only by default). Repeatable.
    #[arg(long, value_name = "HOST:GUEST[:ro|rw]")]
    allow_dir: Vec<String>,
    /// Grant outgoing HTTP to HOST or HOST:PORT. Repeatable.
    #[arg(long, value_name = "HOST[:PORT]")]
    allow_host: Vec<String>,
    /// Inject header HEADER with the value of host env var ENV_VAR into requests to a granted
    /// HOST; the step never sees it. Repeatable.
    #[arg(long, value_name = "HOST=HEADER:ENV_VAR")]
    host_secret: Vec<String>,
    /// Grant the model alias ALIAS (from the host configuration, --host-config). Repeatable.
    /// One-off calls are not cached, budgeted or journaled.
    #[arg(long, value_name = "ALIAS")]
    allow_model: Vec<String>,
    /// A prompt template the step may render: ID=FILE. Repeatable.
    #[arg(long, value_name = "ID=FILE")]
    prompt: Vec<String>,
    /// Print the whole report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

impl Args {
    fn spec(&self) -> anyhow::Result<StepSpec> {
        let dirs = self
            .allow_dir
            .iter()
            .map(|d| d.parse::<DirGrant>())
            .collect::<Result<Vec<_>, _>>()?;
        let mut hosts = self
            .allow_host
            .iter()
            .map(|h| HostGrant::parse(h))
            .collect::<Result<Vec<_>, _>>()?;
        HostGrant::attach_secrets(
            &mut hosts,
            self.host_secret.iter().map(String::as_str),
            |var| std::env::var(var).ok(),
        )?;
        Ok(StepSpec {
            limits: Limits {
                fuel: self.fuel,
                timeout: self.timeout,
                memory_bytes: self.memory,
                output_bytes: self.output_limit,
                ..Limits::default()
            },
            config: StepConfig::from_pairs(self.config.iter().map(String::as_str))?,
            grants: Grants {
                dirs,
                hosts: hosts.into(),
                models: self.allow_model.clone(),
            },
        })
    }
}

/// The `model` capability of a one-off step: the granted aliases, the host's policy, the
/// prompts given on the command line; nothing is cached, budgeted or journaled.
fn model_access(args: &Args, data: &DataArgs) -> anyhow::Result<Option<ModelAccess>> {
    if args.allow_model.is_empty() {
        return Ok(None);
    }
    let models = data.models()?;
    let mut prompts = BTreeMap::new();
    for pair in &args.prompt {
        let (id, file) = pair
            .split_once('=')
            .with_context(|| format!("--prompt {pair:?} is not of the form ID=FILE"))?;
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("--prompt {id}: cannot read {file:?}"))?;
        let prompt = Prompt::new(id, text)
            .map_err(|e| anyhow::anyhow!("--prompt {id} ({file}) is not a valid template: {e}"))?;
        prompts.insert(id.to_string(), prompt);
    }
    let scope = CallScope {
        store: None,
        run_id: "local".into(),
        workflow: "step".into(),
        version: "0.0.0".into(),
        step_id: "step".into(),
        attempt: 1,
        granted: args.allow_model.clone(),
        policy: models.config().policy.clone(),
        budgets: Default::default(),
        prompts: Arc::new(prompts),
        deadline: tokio::time::Instant::now() + args.timeout,
        calls: Default::default(),
        redactor: None,
        replay: None,
    };
    Ok(Some(ModelAccess { models, scope }))
}

pub(crate) async fn execute(host: &Host, data: &DataArgs, args: Args) -> anyhow::Result<ExitCode> {
    let spec = args.spec()?;
    let (input, _origin) = read_input(&args.input)?;
    let plugin = host.load_plugin_file(&args.plugin).await?;
    let ctx = AttemptContext {
        model: model_access(&args, data)?,
        ..AttemptContext::default()
    };
    let report = host
        .run_step(&plugin, &spec, &input, ctx)
        .await
        .with_context(|| format!("failed to run {}", plugin.origin()))?;
    let limits = spec.limits.clamped_to(&host.config().ceilings);
    if args.json {
        outln!("{}", render::pretty_json(&report)?);
    } else {
        render::report(&report, &limits);
    }
    Ok(if report.outcome.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_STEP_FAILED)
    })
}
