//! The PostgreSQL schema: the same logical tables as SQLite (timestamps as BIGINT, bytes as
//! BYTEA, JSON as TEXT so rows map the same way), versioned and applied once under an
//! advisory lock so that hosts starting together do not race.

use sqlx::PgPool;

/// The lock every host takes before migrating (an arbitrary constant: "weir" in ASCII).
const MIGRATION_LOCK: i64 = 0x7765_6972;

/// `(version, SQL)`, in order. Never edit an applied migration: add a new one.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        "
    CREATE TABLE plugins (
        digest TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        version TEXT NOT NULL,
        bytes BYTEA NOT NULL,
        added_ms BIGINT NOT NULL
    );
    CREATE INDEX plugins_by_name ON plugins (name, version, added_ms);
    CREATE TABLE workflows (
        name TEXT NOT NULL,
        version TEXT NOT NULL,
        major BIGINT NOT NULL,
        minor BIGINT NOT NULL,
        patch BIGINT NOT NULL,
        digest TEXT NOT NULL,
        source TEXT NOT NULL,
        base_dir TEXT NOT NULL,
        pins TEXT NOT NULL,
        registered_ms BIGINT NOT NULL,
        PRIMARY KEY (name, version)
    );
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        workflow TEXT NOT NULL,
        version TEXT NOT NULL,
        status TEXT NOT NULL,
        input TEXT NOT NULL,
        input_digest TEXT NOT NULL,
        output TEXT,
        failure TEXT,
        idempotency_key TEXT UNIQUE,
        created_ms BIGINT NOT NULL,
        updated_ms BIGINT NOT NULL,
        event_seq BIGINT NOT NULL DEFAULT 0
    );
    CREATE INDEX runs_by_status ON runs (status, created_ms);
    CREATE TABLE steps (
        run_id TEXT NOT NULL REFERENCES runs (id),
        step_id TEXT NOT NULL,
        position BIGINT NOT NULL,
        plugin_digest TEXT NOT NULL,
        status TEXT NOT NULL,
        output TEXT,
        confidence DOUBLE PRECISION,
        route TEXT,
        failure TEXT,
        skip_reason TEXT,
        attempts BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (run_id, step_id)
    );
    CREATE TABLE attempts (
        run_id TEXT NOT NULL,
        step_id TEXT NOT NULL,
        attempt BIGINT NOT NULL,
        input_digest TEXT NOT NULL,
        status TEXT NOT NULL,
        failure TEXT,
        started_ms BIGINT NOT NULL,
        finished_ms BIGINT,
        latency_us BIGINT,
        fuel BIGINT,
        memory_peak BIGINT,
        logs TEXT,
        PRIMARY KEY (run_id, step_id, attempt)
    );
    CREATE TABLE events (
        run_id TEXT NOT NULL,
        seq BIGINT NOT NULL,
        at_ms BIGINT NOT NULL,
        kind TEXT NOT NULL,
        step_id TEXT,
        data TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    );
    CREATE TABLE state (
        run_id TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (run_id, key)
    );
    CREATE TABLE reviews (
        id TEXT PRIMARY KEY,
        run_id TEXT NOT NULL REFERENCES runs (id),
        step_id TEXT NOT NULL,
        reason TEXT NOT NULL,
        data TEXT NOT NULL,
        status TEXT NOT NULL,
        created_ms BIGINT NOT NULL,
        expires_ms BIGINT,
        default_action TEXT,
        decided_by TEXT,
        decided_ms BIGINT,
        note TEXT,
        before_value TEXT,
        after_value TEXT
    );
    CREATE INDEX reviews_by_status ON reviews (status, created_ms);
    CREATE INDEX reviews_by_run ON reviews (run_id);
    CREATE TABLE model_calls (
        run_id TEXT NOT NULL,
        step_id TEXT NOT NULL,
        attempt BIGINT NOT NULL,
        seq BIGINT NOT NULL,
        workflow TEXT NOT NULL,
        version TEXT NOT NULL,
        alias TEXT NOT NULL,
        provider TEXT,
        model TEXT,
        prompt_id TEXT,
        prompt_hash TEXT,
        request TEXT NOT NULL,
        response TEXT,
        outcome TEXT NOT NULL,
        error TEXT,
        prompt_tokens BIGINT NOT NULL,
        completion_tokens BIGINT NOT NULL,
        cost_micros BIGINT NOT NULL,
        latency_us BIGINT NOT NULL,
        upstream_attempts BIGINT NOT NULL,
        at_ms BIGINT NOT NULL,
        PRIMARY KEY (run_id, step_id, attempt, seq)
    );
    CREATE INDEX model_calls_by_workflow ON model_calls (workflow, version);
    CREATE TABLE model_cache (
        key TEXT PRIMARY KEY,
        response TEXT NOT NULL,
        expires_ms BIGINT NOT NULL
    );
    CREATE TABLE budgets (
        scope TEXT PRIMARY KEY,
        reserved_micros BIGINT NOT NULL DEFAULT 0,
        spent_micros BIGINT NOT NULL DEFAULT 0
    );
    ",
    ),
    (
        2,
        "
    ALTER TABLE runs ADD COLUMN lease_owner TEXT;
    ALTER TABLE runs ADD COLUMN lease_epoch BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE runs ADD COLUMN lease_expires_ms BIGINT;
    CREATE INDEX runs_unfinished ON runs (created_ms) WHERE status IN ('pending', 'running');
    ",
    ),
    (
        3,
        // When a run's payloads were purged: it keeps its metadata and costs.
        "
    ALTER TABLE runs ADD COLUMN purged_ms BIGINT;
    ",
    ),
    (
        4,
        // The daily usage rollup the dashboard's costs page reads (store/usage.rs),
        // filled from the calls already journaled.
        "
    CREATE TABLE usage_daily (
        day TEXT NOT NULL,
        workflow TEXT NOT NULL,
        version TEXT NOT NULL,
        step_id TEXT NOT NULL,
        model TEXT NOT NULL,
        calls BIGINT NOT NULL,
        cached BIGINT NOT NULL,
        failed BIGINT NOT NULL,
        prompt_tokens BIGINT NOT NULL,
        completion_tokens BIGINT NOT NULL,
        cost_micros BIGINT NOT NULL,
        latency_us BIGINT NOT NULL,
        lat_0 BIGINT NOT NULL DEFAULT 0,
        lat_1 BIGINT NOT NULL DEFAULT 0,
        lat_2 BIGINT NOT NULL DEFAULT 0,
        lat_3 BIGINT NOT NULL DEFAULT 0,
        lat_4 BIGINT NOT NULL DEFAULT 0,
        lat_5 BIGINT NOT NULL DEFAULT 0,
        lat_6 BIGINT NOT NULL DEFAULT 0,
        lat_7 BIGINT NOT NULL DEFAULT 0,
        lat_8 BIGINT NOT NULL DEFAULT 0,
        lat_9 BIGINT NOT NULL DEFAULT 0,
        lat_10 BIGINT NOT NULL DEFAULT 0,
        lat_11 BIGINT NOT NULL DEFAULT 0,
        lat_12 BIGINT NOT NULL DEFAULT 0,
        lat_13 BIGINT NOT NULL DEFAULT 0,
        lat_14 BIGINT NOT NULL DEFAULT 0,
        lat_15 BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (day, workflow, version, step_id, model)
    );
    INSERT INTO usage_daily (day, workflow, version, step_id, model, calls, cached, failed,
        prompt_tokens, completion_tokens, cost_micros, latency_us,
        lat_0, lat_1, lat_2, lat_3, lat_4, lat_5, lat_6, lat_7, lat_8, lat_9, lat_10, lat_11, lat_12, lat_13, lat_14, lat_15)
        SELECT to_char(to_timestamp(at_ms / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD'), workflow, version, step_id, COALESCE(model, alias), COUNT(*),
            SUM(CASE WHEN outcome = 'cached' THEN 1 ELSE 0 END),
            SUM(CASE WHEN outcome NOT IN ('ok', 'cached') THEN 1 ELSE 0 END),
            SUM(prompt_tokens), SUM(completion_tokens), SUM(cost_micros), SUM(latency_us),
            SUM(CASE WHEN latency_us < 1000 THEN 1 ELSE 0 END),
            SUM(CASE WHEN latency_us >= 1000 AND latency_us < 2000 THEN 1 ELSE 0 END),
            SUM(CASE WHEN latency_us >= 2000 AND latency_us < 4000 THEN 1 ELSE 0 END),
            SUM(CASE WHEN latency_us >= 4000 AND latency_us < 8000 THEN 1 ELSE 0 END),
            SUM(CASE WHEN latency_us >= 8000 AND latency_us < 16000 THEN 1 ELSE 0 END),
            SUM(CASE WHEN latency_us >= 16000 AND latency_us < 32000 THEN 1 ELSE 0 END),
            SUM(CASE WHEN latency_us >= 32000 AND latency_us < 64000 THEN 1 ELSE 0 END),
            SUM(CASE WHEN latency_us >= 64000 AND latency_us < 128000 THEN 1 ELSE 0 END),
            SUM(CASE WHEN latency_us >= 128000 AND latency_us < 256000 THEN 1 ELSE 0 END),
            SUM(CASE WHEN latency_us >= 256000 AND latency_us < 512000 THEN 1 ELSE 0 END),
            SUM(CASE WHEN latency_us >= 512000 AND latency_us < 1024000 THEN 1 ELSE 0 END),
            SUM(CASE WHEN latency_us >= 1024000 AND latency_us < 2048000 THEN 1 ELSE 0 END),
            SUM(CASE WHEN latency_us >= 2048000 AND latency_us < 4096000 THEN 1 ELSE 0 END),
            SUM(CASE WHEN latency_us >= 4096000 AND latency_us < 8192000 THEN 1 ELSE 0 END),
            SUM(CASE WHEN latency_us >= 8192000 AND latency_us < 16384000 THEN 1 ELSE 0 END),
            SUM(CASE WHEN latency_us >= 16384000 THEN 1 ELSE 0 END)
        FROM model_calls
        GROUP BY 1, 2, 3, 4, 5;
    ",
    ),
    (5, "ALTER TABLE attempts ADD COLUMN tape TEXT"),
    (
        6,
        // Rollouts (store/rollouts.rs): at most one not over per workflow.
        "
    CREATE TABLE rollouts (
        id TEXT PRIMARY KEY,
        workflow TEXT NOT NULL,
        active BOOLEAN NOT NULL,
        revision BIGINT NOT NULL,
        doc TEXT NOT NULL,
        created_ms BIGINT NOT NULL,
        updated_ms BIGINT NOT NULL
    );
    CREATE INDEX rollouts_by_workflow ON rollouts (workflow, created_ms);
    CREATE UNIQUE INDEX rollouts_one_active ON rollouts (workflow) WHERE active;
    CREATE TABLE rollout_events (
        rollout_id TEXT NOT NULL REFERENCES rollouts (id),
        seq BIGINT NOT NULL,
        at_ms BIGINT NOT NULL,
        kind TEXT NOT NULL,
        data TEXT NOT NULL,
        PRIMARY KEY (rollout_id, seq)
    );
    ",
    ),
    (
        7,
        // Shadow results (store/shadows.rs).
        "
    CREATE TABLE shadow_results (
        id TEXT PRIMARY KEY,
        run_id TEXT NOT NULL,
        workflow TEXT NOT NULL,
        version TEXT NOT NULL,
        step_id TEXT NOT NULL,
        candidate TEXT NOT NULL,
        outcome TEXT NOT NULL,
        detail TEXT NOT NULL,
        cost_micros BIGINT NOT NULL,
        at_ms BIGINT NOT NULL
    );
    CREATE INDEX shadow_results_by_step ON shadow_results (workflow, step_id, at_ms);
    CREATE INDEX shadow_results_by_run ON shadow_results (run_id);
    ",
    ),
    (
        8,
        // Experiments (store/experiments.rs): every `weir eval`.
        "
    CREATE TABLE experiments (
        id TEXT PRIMARY KEY,
        workflow TEXT NOT NULL,
        candidate TEXT NOT NULL,
        created_ms BIGINT NOT NULL,
        summary TEXT NOT NULL,
        experiment TEXT NOT NULL
    );
    CREATE INDEX experiments_by_workflow ON experiments (workflow, created_ms);
    ",
    ),
    (
        9,
        // A rerun from a step names the run it reruns.
        "ALTER TABLE runs ADD COLUMN source_run TEXT",
    ),
    (
        10,
        // Step profiles (store/profiles.rs): what each step saw and answered, per window (each
        // result journaled as a row of its own, folded into the counts later), and the
        // baselines pinned over them.
        "
    CREATE TABLE step_profiles (
        workflow TEXT NOT NULL,
        version TEXT NOT NULL,
        step_id TEXT NOT NULL,
        window_ms BIGINT NOT NULL,
        feature TEXT NOT NULL,
        bin TEXT NOT NULL,
        count BIGINT NOT NULL,
        sum DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (workflow, version, step_id, window_ms, feature, bin)
    );
    CREATE TABLE profile_results (
        id BIGSERIAL PRIMARY KEY,
        workflow TEXT NOT NULL,
        version TEXT NOT NULL,
        step_id TEXT NOT NULL,
        window_ms BIGINT NOT NULL,
        counts TEXT NOT NULL
    );
    CREATE TABLE baseline_pins (
        id BIGSERIAL PRIMARY KEY,
        workflow TEXT NOT NULL,
        version TEXT NOT NULL,
        from_ms BIGINT NOT NULL,
        to_ms BIGINT NOT NULL,
        source_version TEXT NOT NULL,
        pinned_by TEXT NOT NULL,
        pinned_ms BIGINT NOT NULL,
        reason TEXT NOT NULL
    );
    CREATE INDEX baseline_pins_by_workflow ON baseline_pins (workflow, pinned_ms);
    ",
    ),
];

/// Applies pending migrations in one transaction, under the migration lock.
pub(super) async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_ms BIGINT NOT NULL)")
        .execute(&mut *tx)
        .await?;
    let current: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
            .fetch_one(&mut *tx)
            .await?;
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        sqlx::raw_sql(sql)
            .execute(&mut *tx)
            .await
            .map_err(|e| anyhow::anyhow!("migration {version} failed: {e}"))?;
        sqlx::query("INSERT INTO schema_migrations (version, applied_ms) VALUES ($1, $2)")
            .bind(version)
            .bind(crate::store::now_ms())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}
