//! Where the CLI keeps its state: the data directory, the database in it, and the runner.

use std::path::PathBuf;
use std::sync::Arc;

use crate::Host;
use crate::model::config::default_config_path;
use crate::model::{ModelConfig, Models};
use crate::runner::Runner;
use crate::store::{Durability, PostgresStore, SqliteStore, Store};

/// Options shared by the commands that use the journal.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct DataArgs {
    /// Data directory: the SQLite journal and run locks live here.
    #[arg(
        long,
        global = true,
        env = "WEIR_DATA_DIR",
        default_value = ".weir",
        value_name = "DIR"
    )]
    pub(crate) data_dir: PathBuf,
    /// `normal` survives a crash of the process; `full` also survives a power loss (fsync per commit).
    #[arg(long, global = true, env = "WEIR_DURABILITY", default_value = "normal", value_parser = clap::value_parser!(DurabilityArg))]
    pub(crate) durability: DurabilityArg,
    /// Host configuration: model providers, aliases, policies and budgets [default: ./weir.toml when present].
    #[arg(long, global = true, env = "WEIR_CONFIG", value_name = "FILE")]
    pub(crate) host_config: Option<PathBuf>,
    /// Where the journal lives: a PostgreSQL URL (`postgres://user@host/db`) for a fleet of
    /// hosts sharing one database [default: the SQLite file `weir.db` in the data directory].
    #[arg(long, global = true, env = "WEIR_STORE", value_name = "URL")]
    pub(crate) store: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct DurabilityArg(pub(crate) Durability);

impl std::str::FromStr for DurabilityArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        s.parse().map(Self)
    }
}

impl DataArgs {
    /// Whether the journal is a database other hosts may share (PostgreSQL).
    pub(crate) fn is_shared(&self) -> bool {
        self.store.is_some()
    }

    pub(crate) async fn store(&self) -> anyhow::Result<Arc<dyn Store>> {
        match self.store.as_deref() {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => Ok(
                Arc::new(PostgresStore::connect(url, self.durability.0).await?),
            ),
            Some(other) => anyhow::bail!(
                "--store {other:?} is not a PostgreSQL URL (postgres://user@host/db); leave it out to use SQLite in the data directory"
            ),
            None => Ok(Arc::new(SqliteStore::open(
                &self.data_dir.join("weir.db"),
                self.durability.0,
            )?)),
        }
    }

    /// The journal for a command that only reads it (or decides on what is in it): a data
    /// directory without one is a mistyped `--data-dir`, refused rather than given a new,
    /// empty journal.
    pub(crate) async fn existing_store(&self) -> anyhow::Result<Arc<dyn Store>> {
        let path = self.data_dir.join("weir.db");
        if self.store.is_none() && !path.exists() {
            anyhow::bail!(
                "there is no journal in the data directory {}: no run has been made there (check --data-dir or WEIR_DATA_DIR; `weir run` creates the journal)",
                self.data_dir.display()
            );
        }
        self.store().await
    }

    /// The runner for commands that make runs, with the model layer checked (API keys present).
    pub(crate) async fn runner(&self, host: &Host) -> anyhow::Result<Runner> {
        self.runner_on(host, self.store().await?)
    }

    /// The runner over an existing journal (see [`DataArgs::existing_store`]).
    pub(crate) async fn existing_runner(&self, host: &Host) -> anyhow::Result<Runner> {
        self.runner_on(host, self.existing_store().await?)
    }

    /// The runner over `store`, with the model layer checked.
    pub(crate) fn runner_on(&self, host: &Host, store: Arc<dyn Store>) -> anyhow::Result<Runner> {
        let models = self.models()?;
        models.config().check_keys()?;
        Ok(Runner::new(host.clone(), store, self.data_dir.join("locks")).with_models(models))
    }

    /// The model layer from the host configuration; with none, no alias is configured and
    /// every model call fails fast as `not_configured` (so fallbacks take over).
    pub(crate) fn models(&self) -> anyhow::Result<Models> {
        let path = self.host_config.clone().or_else(default_config_path);
        Ok(match path {
            Some(path) => Models::new(ModelConfig::load(&path)?),
            None => Models::default(),
        })
    }
}
