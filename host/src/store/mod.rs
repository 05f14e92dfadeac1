//! The durable journal: runs, steps, attempts, events, run state, registered workflows and
//! the content-addressed plugin store, behind one [`Store`] trait.
//!
//! The trait speaks in the journal's own terms (create a run; advance it: record a result,
//! skip steps, start attempts, end the run) so that each backend can implement them
//! atomically in its own way: SQLite here (one writer thread with group commit), PostgreSQL
//! for fleets. The semantics every backend keeps: a step's result is recorded at most once
//! (the first writer wins, later ones are told so), every change to a run appends an event in
//! the same transaction, a workflow version's definition never changes once registered, and
//! a run keeps the plugin digests it was submitted with.

mod durability;
pub mod experiments;
mod idempotency;
mod migrations;
mod model_types;
mod postgres;
pub mod profiles;
mod purge;
pub mod rollouts;
mod run_query;
pub mod shadows;
mod sqlite;
mod types;
pub mod usage;

pub use durability::Durability;
pub use experiments::{ExperimentJournal, ExperimentRecord};
pub use idempotency::IdempotencyError;
pub(crate) use idempotency::check_key as check_idempotency_key;
pub use model_types::*;
pub use postgres::PostgresStore;
pub use profiles::{BaselinePin, MonitorJournal, ProfileFilter, ProfileRow, StepProfile};
pub use rollouts::RolloutJournal;
pub use shadows::{ShadowJournal, ShadowResult};
pub(crate) use sqlite::now_ms;
pub use sqlite::{PAGE_SIZE_BYTES as SQLITE_PAGE_SIZE_BYTES, SqliteStore};
pub use types::*;

use async_trait::async_trait;

/// Whether a store error is worth trying again: another process holds the SQLite database
/// past the busy timeout, or PostgreSQL was briefly unreachable or aborted the transaction
/// (serialization failure, deadlock, failover). A refusal that would come back the same
/// (a constraint, a full disk, a conflict the journal reports) is not.
pub fn is_transient(e: &anyhow::Error) -> bool {
    e.chain()
        .any(|cause| sqlite::is_busy(cause) || postgres::is_transient(cause))
}

/// Where runs live.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores plugin bytes under their sha256 (idempotent).
    async fn put_plugin(
        &self,
        digest: &str,
        name: &str,
        version: &str,
        bytes: &[u8],
    ) -> anyhow::Result<()>;
    /// Plugin bytes by digest.
    async fn get_plugin(&self, digest: &str) -> anyhow::Result<Option<Vec<u8>>>;
    /// The digest of the latest plugin registered under `name@version`.
    async fn find_plugin(&self, name: &str, version: &str) -> anyhow::Result<Option<String>>;

    /// Registers a workflow version. Registering the same content again is a no-op; the same
    /// definition with other plugin bytes repins the version (runs already submitted keep
    /// their own pins); another definition under an existing `name@version` is an error
    /// (definitions are immutable).
    async fn register_workflow(&self, workflow: &WorkflowVersion) -> anyhow::Result<Registered>;
    /// A registered workflow: the given version, or the highest one.
    async fn get_workflow(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> anyhow::Result<Option<WorkflowVersion>>;
    /// Every registered workflow version.
    async fn list_workflows(&self) -> anyhow::Result<Vec<WorkflowVersion>>;

    /// Creates a run (status `pending`) with one `pending` step row per step, or returns the
    /// run that already has this idempotency key (`created == false`).
    async fn create_run(&self, run: NewRun) -> anyhow::Result<(RunRecord, bool)>;
    /// Creates a run and applies its first advance (`first.run_id` is replaced by the new
    /// run's id) in one transaction: a run that starts at once takes one commit, not two,
    /// and if the advance fails the run is not created either. When the idempotency key
    /// names an existing run, nothing of `first` is applied and that run is returned
    /// (`created == false`, no [`Advanced`]).
    async fn create_started(
        &self,
        run: NewRun,
        first: Advance,
    ) -> anyhow::Result<(RunRecord, bool, Option<Advanced>)>;
    /// One run.
    async fn get_run(&self, id: &str) -> anyhow::Result<Option<RunRecord>>;
    /// Runs, newest first.
    async fn list_runs(&self, filter: &RunFilter) -> anyhow::Result<Vec<RunRecord>>;
    /// Ids of runs that are `pending` or `running`, oldest first.
    async fn unfinished_runs(&self) -> anyhow::Result<Vec<String>>;
    /// Moves a run to `status`, with its output or failure when it ends.
    async fn set_run_status(
        &self,
        id: &str,
        status: RunStatus,
        output: Option<serde_json::Value>,
        failure: Option<serde_json::Value>,
    ) -> anyhow::Result<()>;

    /// The step rows of a run.
    async fn steps(&self, run_id: &str) -> anyhow::Result<Vec<StepRecord>>;
    /// Applies an [`Advance`] atomically: the attempt result (exactly once: when the step
    /// already has a result nothing is applied), skips, new attempts (journaled before they
    /// run), and the run's end, each with its event.
    async fn advance(&self, advance: Advance) -> anyhow::Result<Advanced>;
    /// Reviews, oldest first: those in `status` (all when `None`), of `run_id` (all when `None`).
    async fn reviews(
        &self,
        status: Option<ReviewStatus>,
        run_id: Option<&str>,
    ) -> anyhow::Result<Vec<ReviewRecord>>;
    /// One review.
    async fn get_review(&self, id: &str) -> anyhow::Result<Option<ReviewRecord>>;
    /// Pending reviews whose time ran out by `now_ms`.
    async fn expired_reviews(&self, now_ms: i64) -> anyhow::Result<Vec<ReviewRecord>>;
    /// Applies a decision to a pending review in one transaction, with its audit record
    /// (who, when, decision, the step output before and after): approve keeps the step's
    /// output, edit replaces it, reject fails the run. The run goes back to `running` once no
    /// review of it is pending. Fails if the review was already decided.
    async fn decide_review(
        &self,
        id: &str,
        decision: Decision,
        decided: Decided,
    ) -> anyhow::Result<ReviewRecord>;

    /// Purges the payloads of runs that ended before `ended_before_ms` and were not purged
    /// yet, of `workflow` (every workflow when `None`), at most `limit` of them, oldest
    /// first: inputs, outputs, logs, state, review data, failure messages and model requests
    /// and responses go; metadata and costs stay (see `store/purge.rs`). Expired model cache
    /// entries go too. Returns the ids of the runs purged.
    async fn purge_payloads(
        &self,
        workflow: Option<&str>,
        ended_before_ms: i64,
        limit: usize,
    ) -> anyhow::Result<Vec<String>>;

    /// Every attempt of a run.
    async fn attempts(&self, run_id: &str) -> anyhow::Result<Vec<AttemptRecord>>;
    /// A run's event log, in order.
    async fn events(&self, run_id: &str) -> anyhow::Result<Vec<EventRecord>>;

    /// A run-scoped state value.
    async fn state_get(&self, run_id: &str, key: &str) -> anyhow::Result<Option<String>>;
    /// Sets a run-scoped state value; `None` deletes it. Fails past `max_keys` keys.
    async fn state_set(
        &self,
        run_id: &str,
        key: &str,
        value: Option<&str>,
        max_keys: u64,
    ) -> anyhow::Result<()>;

    /// Journals one model call and, in the same transaction, settles its budget reservation.
    async fn record_model_call(
        &self,
        call: ModelCallRecord,
        settle: Option<Settle>,
    ) -> anyhow::Result<()>;
    /// A run's model calls, in order.
    async fn model_calls(&self, run_id: &str) -> anyhow::Result<Vec<ModelCallRecord>>;
    /// Reserves `micros` on every scope at once, or on none: the first scope that would go
    /// over its limit is returned instead. Concurrent reservations never overspend.
    async fn reserve_budget(
        &self,
        scopes: Vec<BudgetScope>,
        micros: i64,
    ) -> anyhow::Result<Result<(), BudgetExceeded>>;
    /// What a budget scope has reserved and spent.
    async fn spend(&self, scope: &str) -> anyhow::Result<Spend>;
    /// The daily usage rollup from `since_day` (`YYYY-MM-DD`, UTC) on, newest day first.
    async fn usage(&self, since_day: &str) -> anyhow::Result<Vec<usage::UsageRow>>;
    /// A cached model response that has not expired by `now_ms`.
    async fn cache_get(&self, key: &str, now_ms: i64) -> anyhow::Result<Option<String>>;
    /// Caches a model response until `expires_ms`.
    async fn cache_put(&self, key: &str, response: &str, expires_ms: i64) -> anyhow::Result<()>;

    /// Claims `run_id` for `owner` for `lease_ms` when it is unfinished and no live lease is
    /// held on it (the owner's own expired or released lease included); `None` otherwise.
    async fn claim_run(
        &self,
        run_id: &str,
        owner: &str,
        lease_ms: i64,
    ) -> anyhow::Result<Option<Lease>>;
    /// Claims up to `limit` unfinished runs, oldest first, created at least `min_age_ms`
    /// ago, whose lease has expired or that never had one: how a fleet takes over the runs
    /// of a host that died. Rows other hosts are claiming at the same moment are skipped.
    async fn claim_orphans(
        &self,
        owner: &str,
        lease_ms: i64,
        limit: usize,
        min_age_ms: i64,
    ) -> anyhow::Result<Vec<Lease>>;
    /// Claims up to `limit` unfinished runs, oldest first, that a host held and let go of:
    /// its lease ran out (the host died or was cut off) or it gave the lease up (it drained).
    /// Runs no host ever claimed are left alone: they may be waiting in their host's queue.
    /// How a fleet takes over a dead host's runs ahead of its own new work.
    async fn claim_abandoned(
        &self,
        owner: &str,
        lease_ms: i64,
        limit: usize,
    ) -> anyhow::Result<Vec<Lease>>;
    /// Extends a lease; false when it is no longer held (taken over, or the run ended).
    async fn renew_lease(&self, lease: &Lease, lease_ms: i64) -> anyhow::Result<bool>;
    /// Gives a lease up, so another host may claim the run at once.
    async fn release_lease(&self, lease: &Lease) -> anyhow::Result<()>;

    /// The rollout journal (see `store/rollouts.rs`).
    fn rollouts(&self) -> &dyn RolloutJournal;
    /// The shadow journal (see `store/shadows.rs`).
    fn shadows(&self) -> &dyn ShadowJournal;
    /// The experiment journal (see `store/experiments.rs`).
    fn experiments(&self) -> &dyn ExperimentJournal;
    /// The monitor's journal: step profiles and baselines (see `store/profiles.rs`).
    fn monitor(&self) -> &dyn MonitorJournal;
}
