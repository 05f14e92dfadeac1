//! The embedded SQLite backend: WAL mode, one writer connection that commits every queued
//! write in one transaction (group commit, led by whichever caller finds it free), and a pool
//! of connections for reads.
//!
//! With `Durability::Full` every commit is fsynced; group commit keeps throughput up when
//! many runs write at once, because one fsync covers all the writes queued behind it.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, anyhow, bail};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;
use sha2::Digest as _;

mod checkpoint;
mod experiments;
mod fold;
mod journal;
mod lease;
mod migrate;
mod model;
mod profiles;
mod purge;
mod reviews;
mod rollouts;
mod rows;
mod shadows;
mod state;
mod writer;

use rows::{EventKeys, RUN_COLUMNS, WORKFLOW_COLUMNS, get_run, json_col, run_row, workflow_row};

use super::*;
use migrate::migrate;
pub use writer::PAGE_SIZE_BYTES;
pub(super) use writer::is_busy;
use writer::{Writer, open};

/// Writes committed together at most; bounds the latency one batch adds to its first write.
const MAX_BATCH: usize = 256;
/// Unfinished runs, oldest first, through the index that holds only them.
const UNFINISHED_RUNS: &str =
    "SELECT id FROM runs WHERE status IN ('pending', 'running') ORDER BY created_ms, id";
/// Rows `list_runs` returns when no limit is given.
const DEFAULT_LIST_LIMIT: u32 = 50;

/// The SQLite store.
pub struct SqliteStore {
    writer: std::sync::Arc<Writer>,
    /// Idle read connections; a read takes one (opening another when none is idle).
    readers: Mutex<Vec<Connection>>,
    durability: Durability,
    path: PathBuf,
    /// Where recent runs' events are, so most advances need not read their run's row.
    known: std::sync::Arc<rows::KnownKeys>,
    _checkpointer: checkpoint::Checkpointer,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    pub fn open(path: &Path, durability: Durability) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("failed to create the data directory {dir:?}"))?;
        }
        let mut writer = open(path, durability)?;
        migrate(&mut writer).with_context(|| format!("failed to migrate the database {path:?}"))?;
        let checkpointer = checkpoint::spawn(path, durability)?;
        Ok(Self {
            _checkpointer: checkpointer,
            writer: Writer::new(writer),
            readers: Mutex::new(Vec::new()),
            durability,
            path: path.to_path_buf(),
            known: Default::default(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let (reply, result) = tokio::sync::oneshot::channel();
        self.writer.submit(writer::job(f, reply));
        result
            .await
            .map_err(|_| anyhow!("the database writer dropped a write"))?
    }

    /// Runs a read on an idle connection, inline. Reads are short indexed queries, and in WAL
    /// mode they never wait for the writer, so running them on the async thread costs less
    /// than a hop to a blocking thread and back.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let idle = self.readers.lock().expect("reader pool poisoned").pop();
        let conn = match idle {
            Some(conn) => conn,
            None => open(&self.path, self.durability)?,
        };
        let result = f(&conn);
        self.readers
            .lock()
            .expect("reader pool poisoned")
            .push(conn);
        result
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn put_plugin(
        &self,
        digest: &str,
        name: &str,
        version: &str,
        bytes: &[u8],
    ) -> anyhow::Result<()> {
        let actual = hex::encode(sha2::Sha256::digest(bytes));
        if actual != digest {
            bail!("plugin bytes have sha256 {actual}, not the claimed {digest}");
        }
        let (digest, name, version, bytes) = (
            digest.to_string(),
            name.to_string(),
            version.to_string(),
            bytes.to_vec(),
        );
        self.write(move |c| {
            c.execute(
                "INSERT INTO plugins (digest, name, version, bytes, added_ms) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (digest) DO NOTHING",
                params![digest, name, version, bytes, now_ms()],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_plugin(&self, digest: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let digest = digest.to_string();
        self.read(move |c| {
            Ok(c.query_row(
                "SELECT bytes FROM plugins WHERE digest = ?1",
                [digest],
                |r| r.get(0),
            )
            .optional()?)
        })
        .await
    }

    async fn find_plugin(&self, name: &str, version: &str) -> anyhow::Result<Option<String>> {
        let (name, version) = (name.to_string(), version.to_string());
        self.read(move |c| {
            Ok(c.query_row(
                "SELECT digest FROM plugins WHERE name = ?1 AND version = ?2 ORDER BY added_ms DESC LIMIT 1",
                params![name, version],
                |r| r.get(0),
            )
            .optional()?)
        })
        .await
    }

    async fn register_workflow(&self, wf: &WorkflowVersion) -> anyhow::Result<Registered> {
        let wf = wf.clone();
        let parsed = semver::Version::parse(&wf.version)?;
        self.write(move |c| {
            let existing: Option<(String, String)> = c
                .query_row("SELECT digest, source FROM workflows WHERE name = ?1 AND version = ?2", params![wf.name, wf.version], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            match existing {
                Some((digest, _)) if digest == wf.digest => return Ok(Registered::Existing),
                Some((_, source)) if source != wf.source => bail!(
                    "workflow {}@{} is already registered with a different definition; a version's definition is immutable, so bump `version` to register the change",
                    wf.name,
                    wf.version
                ),
                Some(_) => {
                    // Same definition, new plugin bytes: new runs take the new pins; runs
                    // already submitted keep the digests they were pinned to.
                    c.execute(
                        "UPDATE workflows SET digest = ?3, pins = ?4 WHERE name = ?1 AND version = ?2",
                        params![wf.name, wf.version, wf.digest, serde_json::to_string(&wf.pins)?],
                    )?;
                    return Ok(Registered::Repinned);
                }
                None => {}
            }
            c.execute(
                "INSERT INTO workflows (name, version, major, minor, patch, digest, source, base_dir, pins, registered_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    wf.name,
                    wf.version,
                    parsed.major as i64,
                    parsed.minor as i64,
                    parsed.patch as i64,
                    wf.digest,
                    wf.source,
                    wf.base_dir,
                    serde_json::to_string(&wf.pins)?,
                    now_ms()
                ],
            )?;
            Ok(Registered::New)
        })
        .await
    }

    async fn get_workflow(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> anyhow::Result<Option<WorkflowVersion>> {
        let (name, version) = (name.to_string(), version.map(str::to_string));
        self.read(move |c| {
            let found = match version {
                Some(v) => c
                    .query_row(&format!("SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE name = ?1 AND version = ?2"), params![name, v], workflow_row)
                    .optional()?,
                None => {
                    // Highest version by semver precedence; among pre-releases of one version, the latest registered.
                    let mut all: Vec<WorkflowVersion> = c
                        .prepare_cached(&format!("SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE name = ?1"))?
                        .query_map([name], workflow_row)?
                        .collect::<Result<_, _>>()?;
                    all.sort_by(|a, b| {
                        let (va, vb) = (semver::Version::parse(&a.version).ok(), semver::Version::parse(&b.version).ok());
                        va.cmp(&vb).then(a.registered_ms.cmp(&b.registered_ms))
                    });
                    all.pop()
                }
            };
            Ok(found)
        })
        .await
    }

    async fn list_workflows(&self) -> anyhow::Result<Vec<WorkflowVersion>> {
        self.read(|c| {
            Ok(c.prepare_cached(&format!(
                "SELECT {WORKFLOW_COLUMNS} FROM workflows ORDER BY name, major, minor, patch"
            ))?
            .query_map([], workflow_row)?
            .collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn create_run(&self, run: NewRun) -> anyhow::Result<(RunRecord, bool)> {
        let known = self.known.clone();
        self.write(move |c| {
            let (run, keys) = journal::create(c, &run, RunStatus::Pending)?;
            if let Some(keys) = keys {
                known.remember(&run.id, keys);
            }
            Ok((run, keys.is_some()))
        })
        .await
    }

    async fn create_started(
        &self,
        run: NewRun,
        mut first: Advance,
    ) -> anyhow::Result<(RunRecord, bool, Option<Advanced>)> {
        let known = self.known.clone();
        self.write(move |c| {
            // Created `running`, not `pending` and moved on by the first advance: one
            // statement, not two, for the same row and events.
            let (record, keys) = journal::create(c, &run, RunStatus::Running)?;
            let Some(keys) = keys else {
                return Ok((record, false, None));
            };
            // The run was created in this very transaction: it is `running`, its log holds
            // `run_created` and `run_running`, and none of its steps has an attempt yet. (A
            // start of a step the run does not have is left to the journal's check, which
            // refuses it.)
            first.run_id = record.id.clone();
            let basis = Basis {
                seq: 2,
                attempts: first
                    .started
                    .iter()
                    .filter(|(step, _)| run.steps.iter().any(|(s, _)| s == step))
                    .map(|(step, _)| (step.clone(), 0))
                    .collect(),
            };
            let assumed = journal::Known {
                keys,
                status: RunStatus::Running,
                last: 2,
                basis: Some(&basis),
                optimistic: false,
            };
            let advanced =
                journal::remembered(journal::apply(c, &first, assumed), &first, keys, &known)?;
            let record = advanced.run.clone().unwrap_or(record);
            Ok((record, true, Some(advanced)))
        })
        .await
    }

    async fn get_run(&self, id: &str) -> anyhow::Result<Option<RunRecord>> {
        let id = id.to_string();
        self.read(move |c| get_run(c, &id)).await
    }

    async fn list_runs(&self, filter: &RunFilter) -> anyhow::Result<Vec<RunRecord>> {
        let limit = filter.limit.unwrap_or(DEFAULT_LIST_LIMIT);
        let (sql, binds) = run_query::list_runs(
            RUN_COLUMNS,
            filter,
            limit,
            |n| format!("?{n}"),
            fold::route_taken,
        );
        self.read(move |c| {
            let values: Vec<rusqlite::types::Value> = binds
                .into_iter()
                .map(|b| match b {
                    run_query::Bind::Text(t) => rusqlite::types::Value::Text(t),
                    run_query::Bind::Int(i) => rusqlite::types::Value::Integer(i),
                })
                .collect();
            Ok(c.prepare_cached(&sql)?
                .query_map(rusqlite::params_from_iter(values), run_row)?
                .collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn unfinished_runs(&self) -> anyhow::Result<Vec<String>> {
        self.read(|c| {
            Ok(c.prepare_cached(UNFINISHED_RUNS)?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn set_run_status(
        &self,
        id: &str,
        status: RunStatus,
        output: Option<Value>,
        failure: Option<Value>,
    ) -> anyhow::Result<()> {
        let id = id.to_string();
        self.write(move |c| journal::set_status(c, &id, status, output, failure))
            .await
    }

    async fn purge_payloads(
        &self,
        workflow: Option<&str>,
        ended_before_ms: i64,
        limit: usize,
    ) -> anyhow::Result<Vec<String>> {
        let (path, durability) = (self.path.clone(), self.durability);
        let workflow = workflow.map(str::to_string);
        tokio::task::spawn_blocking(move || {
            purge::purge_runs(
                &path,
                durability,
                workflow.as_deref(),
                ended_before_ms,
                limit,
            )
        })
        .await?
    }

    async fn steps(&self, run_id: &str) -> anyhow::Result<Vec<StepRecord>> {
        let run_id = run_id.to_string();
        self.read(move |c| Ok(fold::fold(c, &run_id, false)?.0))
            .await
    }

    async fn advance(&self, advance: Advance) -> anyhow::Result<Advanced> {
        let known = self.known.clone();
        self.write(move |c| journal::advance_with(c, &advance, &known))
            .await
    }

    async fn reviews(
        &self,
        status: Option<ReviewStatus>,
        run_id: Option<&str>,
    ) -> anyhow::Result<Vec<ReviewRecord>> {
        let run_id = run_id.map(str::to_string);
        self.read(move |c| reviews::list(c, status, run_id.as_deref()))
            .await
    }

    async fn get_review(&self, id: &str) -> anyhow::Result<Option<ReviewRecord>> {
        let id = id.to_string();
        self.read(move |c| reviews::get(c, &id)).await
    }

    async fn expired_reviews(&self, now_ms: i64) -> anyhow::Result<Vec<ReviewRecord>> {
        self.read(move |c| reviews::expired(c, now_ms)).await
    }

    async fn decide_review(
        &self,
        id: &str,
        decision: Decision,
        decided: Decided,
    ) -> anyhow::Result<ReviewRecord> {
        let id = id.to_string();
        self.write(move |c| reviews::decide(c, &id, &decision, &decided))
            .await
    }

    async fn attempts(&self, run_id: &str) -> anyhow::Result<Vec<AttemptRecord>> {
        let run_id = run_id.to_string();
        self.read(move |c| {
            let mut attempts = fold::fold(c, &run_id, true)?.1;
            if attempts.iter().any(|a| a.status == StepStatus::Running) {
                let ended_ms = get_run(c, &run_id)?
                    .filter(|run| run.status.is_final())
                    .map(|run| run.updated_ms);
                fold::close_interrupted(&mut attempts, ended_ms);
            }
            Ok(attempts)
        })
        .await
    }

    async fn events(&self, run_id: &str) -> anyhow::Result<Vec<EventRecord>> {
        let run_id = run_id.to_string();
        self.read(move |c| {
            let Some(keys) = EventKeys::find(c, &run_id)? else {
                return Ok(Vec::new());
            };
            Ok(c.prepare_cached(
                "SELECT key - ?1, at_ms, kind, step_id, data FROM events WHERE key > ?1 AND key < ?2 ORDER BY key",
            )?
            .query_map([keys.after(), keys.before()], |r| {
                Ok(EventRecord {
                    seq: r.get(0)?,
                    at_ms: r.get(1)?,
                    kind: r.get(2)?,
                    step_id: r.get(3)?,
                    data: json_col(r.get(4)?).unwrap_or(Value::Null),
                })
            })?
            .collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn state_get(&self, run_id: &str, key: &str) -> anyhow::Result<Option<String>> {
        let (run_id, key) = (run_id.to_string(), key.to_string());
        self.read(move |c| state::get(c, &run_id, &key)).await
    }

    async fn state_set(
        &self,
        run_id: &str,
        key: &str,
        value: Option<&str>,
        max_keys: u64,
    ) -> anyhow::Result<()> {
        let (run_id, key, value) = (
            run_id.to_string(),
            key.to_string(),
            value.map(str::to_string),
        );
        self.write(move |c| state::set(c, &run_id, &key, value.as_deref(), max_keys))
            .await
    }

    async fn record_model_call(
        &self,
        call: ModelCallRecord,
        settle: Option<Settle>,
    ) -> anyhow::Result<()> {
        self.write(move |c| model::record_call(c, &call, settle.as_ref()))
            .await
    }

    async fn model_calls(&self, run_id: &str) -> anyhow::Result<Vec<ModelCallRecord>> {
        let run_id = run_id.to_string();
        self.read(move |c| model::calls(c, &run_id)).await
    }

    async fn reserve_budget(
        &self,
        scopes: Vec<BudgetScope>,
        micros: i64,
    ) -> anyhow::Result<Result<(), BudgetExceeded>> {
        self.write(move |c| model::reserve(c, &scopes, micros))
            .await
    }

    async fn spend(&self, scope: &str) -> anyhow::Result<Spend> {
        let scope = scope.to_string();
        self.read(move |c| model::spend(c, &scope)).await
    }

    async fn usage(&self, since_day: &str) -> anyhow::Result<Vec<usage::UsageRow>> {
        let since_day = since_day.to_string();
        self.read(move |c| model::usage(c, &since_day)).await
    }

    async fn cache_get(&self, key: &str, now_ms: i64) -> anyhow::Result<Option<String>> {
        let key = key.to_string();
        self.read(move |c| model::cache_get(c, &key, now_ms)).await
    }

    async fn cache_put(&self, key: &str, response: &str, expires_ms: i64) -> anyhow::Result<()> {
        let (key, response) = (key.to_string(), response.to_string());
        self.write(move |c| model::cache_put(c, &key, &response, expires_ms))
            .await
    }

    async fn claim_run(
        &self,
        run_id: &str,
        owner: &str,
        lease_ms: i64,
    ) -> anyhow::Result<Option<Lease>> {
        let (run_id, owner) = (run_id.to_string(), owner.to_string());
        self.write(move |c| lease::claim_run(c, &run_id, &owner, lease_ms))
            .await
    }

    async fn claim_orphans(
        &self,
        owner: &str,
        lease_ms: i64,
        limit: usize,
        min_age_ms: i64,
    ) -> anyhow::Result<Vec<Lease>> {
        let owner = owner.to_string();
        self.write(move |c| lease::claim_orphans(c, &owner, lease_ms, limit, min_age_ms))
            .await
    }

    async fn claim_abandoned(
        &self,
        owner: &str,
        lease_ms: i64,
        limit: usize,
    ) -> anyhow::Result<Vec<Lease>> {
        let owner = owner.to_string();
        self.write(move |c| lease::claim_abandoned(c, &owner, lease_ms, limit))
            .await
    }

    async fn renew_lease(&self, held: &Lease, lease_ms: i64) -> anyhow::Result<bool> {
        let held = held.clone();
        self.write(move |c| lease::renew(c, &held, lease_ms)).await
    }

    async fn release_lease(&self, held: &Lease) -> anyhow::Result<()> {
        let held = held.clone();
        self.write(move |c| lease::release(c, &held)).await
    }
    fn rollouts(&self) -> &dyn RolloutJournal {
        self
    }

    fn shadows(&self) -> &dyn ShadowJournal {
        self
    }

    fn experiments(&self) -> &dyn ExperimentJournal {
        self
    }

    fn monitor(&self) -> &dyn MonitorJournal {
        self
    }
}
