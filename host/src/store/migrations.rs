//! Versioned schema migrations, applied in order, each once, in one transaction.
//!
//! The SQL sticks to what SQLite and PostgreSQL share (TEXT, INTEGER, REAL, BLOB as BYTEA
//! there), so the PostgreSQL backend can carry the same list; a migration that only changes
//! SQLite's physical layout says so.

/// `(version, SQL)`, in order. Never edit an applied migration: add a new one.
pub(crate) const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        "
    CREATE TABLE plugins (
        digest TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        version TEXT NOT NULL,
        bytes BLOB NOT NULL,
        added_ms INTEGER NOT NULL
    );
    CREATE INDEX plugins_by_name ON plugins (name, version, added_ms);
    CREATE TABLE workflows (
        name TEXT NOT NULL,
        version TEXT NOT NULL,
        major INTEGER NOT NULL,
        minor INTEGER NOT NULL,
        patch INTEGER NOT NULL,
        digest TEXT NOT NULL,
        source TEXT NOT NULL,
        base_dir TEXT NOT NULL,
        pins TEXT NOT NULL,
        registered_ms INTEGER NOT NULL,
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
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL
    );
    CREATE INDEX runs_by_status ON runs (status, created_ms);
    CREATE TABLE steps (
        run_id TEXT NOT NULL REFERENCES runs (id),
        step_id TEXT NOT NULL,
        position INTEGER NOT NULL,
        plugin_digest TEXT NOT NULL,
        status TEXT NOT NULL,
        output TEXT,
        confidence REAL,
        route TEXT,
        failure TEXT,
        skip_reason TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (run_id, step_id)
    );
    CREATE TABLE attempts (
        run_id TEXT NOT NULL,
        step_id TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        input_digest TEXT NOT NULL,
        status TEXT NOT NULL,
        failure TEXT,
        started_ms INTEGER NOT NULL,
        finished_ms INTEGER,
        latency_us INTEGER,
        fuel INTEGER,
        memory_peak INTEGER,
        logs TEXT,
        PRIMARY KEY (run_id, step_id, attempt)
    );
    CREATE TABLE events (
        run_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        at_ms INTEGER NOT NULL,
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
    ",
    ),
    (
        2,
        "
    CREATE TABLE reviews (
        id TEXT PRIMARY KEY,
        run_id TEXT NOT NULL REFERENCES runs (id),
        step_id TEXT NOT NULL,
        reason TEXT NOT NULL,
        data TEXT NOT NULL,
        status TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        expires_ms INTEGER,
        default_action TEXT,
        decided_by TEXT,
        decided_ms INTEGER,
        note TEXT,
        before_value TEXT,
        after_value TEXT
    );
    CREATE INDEX reviews_by_status ON reviews (status, created_ms);
    CREATE INDEX reviews_by_run ON reviews (run_id);
    ",
    ),
    (
        3,
        // SQLite's physical layout, not the logical schema (the PostgreSQL backend has no
        // equivalent and skips it): the tables a step's commit writes become clustered on
        // their primary key (`WITHOUT ROWID`), so each row lives in one b-tree instead of a
        // table plus a key index, and a commit writes about half the pages.
        "
    CREATE TABLE steps_clustered (
        run_id TEXT NOT NULL REFERENCES runs (id),
        step_id TEXT NOT NULL,
        position INTEGER NOT NULL,
        plugin_digest TEXT NOT NULL,
        status TEXT NOT NULL,
        output TEXT,
        confidence REAL,
        route TEXT,
        failure TEXT,
        skip_reason TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (run_id, step_id)
    ) WITHOUT ROWID;
    INSERT INTO steps_clustered SELECT run_id, step_id, position, plugin_digest, status, output, confidence, route, failure, skip_reason, attempts FROM steps;
    DROP TABLE steps;
    ALTER TABLE steps_clustered RENAME TO steps;
    CREATE TABLE attempts_clustered (
        run_id TEXT NOT NULL,
        step_id TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        input_digest TEXT NOT NULL,
        status TEXT NOT NULL,
        failure TEXT,
        started_ms INTEGER NOT NULL,
        finished_ms INTEGER,
        latency_us INTEGER,
        fuel INTEGER,
        memory_peak INTEGER,
        logs TEXT,
        PRIMARY KEY (run_id, step_id, attempt)
    ) WITHOUT ROWID;
    INSERT INTO attempts_clustered SELECT run_id, step_id, attempt, input_digest, status, failure, started_ms, finished_ms, latency_us, fuel, memory_peak, logs FROM attempts;
    DROP TABLE attempts;
    ALTER TABLE attempts_clustered RENAME TO attempts;
    CREATE TABLE events_clustered (
        run_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        at_ms INTEGER NOT NULL,
        kind TEXT NOT NULL,
        step_id TEXT,
        data TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    ) WITHOUT ROWID;
    INSERT INTO events_clustered SELECT run_id, seq, at_ms, kind, step_id, data FROM events;
    DROP TABLE events;
    ALTER TABLE events_clustered RENAME TO events;
    CREATE TABLE state_clustered (
        run_id TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (run_id, key)
    ) WITHOUT ROWID;
    INSERT INTO state_clustered SELECT run_id, key, value FROM state;
    DROP TABLE state;
    ALTER TABLE state_clustered RENAME TO state;
    ",
    ),
    (
        4,
        "
    CREATE TABLE model_calls (
        run_id TEXT NOT NULL,
        step_id TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        seq INTEGER NOT NULL,
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
        prompt_tokens INTEGER NOT NULL,
        completion_tokens INTEGER NOT NULL,
        cost_micros INTEGER NOT NULL,
        latency_us INTEGER NOT NULL,
        upstream_attempts INTEGER NOT NULL,
        at_ms INTEGER NOT NULL,
        PRIMARY KEY (run_id, step_id, attempt, seq)
    );
    CREATE INDEX model_calls_by_workflow ON model_calls (workflow, version);
    CREATE TABLE model_cache (
        key TEXT PRIMARY KEY,
        response TEXT NOT NULL,
        expires_ms INTEGER NOT NULL
    );
    CREATE TABLE budgets (
        scope TEXT PRIMARY KEY,
        reserved_micros INTEGER NOT NULL DEFAULT 0,
        spent_micros INTEGER NOT NULL DEFAULT 0
    );
    ",
    ),
    (
        5,
        "
    ALTER TABLE runs ADD COLUMN lease_owner TEXT;
    ALTER TABLE runs ADD COLUMN lease_epoch INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE runs ADD COLUMN lease_expires_ms INTEGER;
    ",
    ),
    (
        6,
        // SQLite only (the PostgreSQL schema has its own list): a step's changes become
        // events that carry what its rows held, so an advance writes the event log alone (see
        // `store/sqlite/fold.rs`). Rows written before stay as they are: each step row is a
        // snapshot as of the run's last event at the upgrade, and attempts already journaled
        // stay rows of `attempts`. The index of runs by status becomes an index of the
        // unfinished ones (what resume and fleet claims look for): a run going from `pending`
        // to `running` no longer moves its entry, and finished runs leave it.
        "
    DROP INDEX runs_by_status;
    CREATE INDEX runs_unfinished ON runs (created_ms) WHERE status IN ('pending', 'running');
    ALTER TABLE steps ADD COLUMN as_of_seq INTEGER NOT NULL DEFAULT 0;
    UPDATE steps SET as_of_seq = COALESCE((SELECT MAX(e.seq) FROM events e WHERE e.run_id = steps.run_id), 0);
    ALTER TABLE events ADD COLUMN attempt INTEGER;
    ALTER TABLE events ADD COLUMN record TEXT;
    ",
    ),
    (
        7,
        // SQLite only: what creating and ending a run writes.
        // - A run created from here on lists its steps in its `run_created` event
        //   (`record.steps`) instead of a row per step in `steps` (see `store/sqlite/fold.rs`).
        //   The version is also what stops an older Weir, which would look for those rows,
        //   from opening the database (see `sqlite::migrate`).
        // - `runs` becomes clustered on its id (`WITHOUT ROWID`), and only runs that have an
        //   idempotency key are in that key's index: a run's row and its key were three
        //   b-trees (the table, the id's index, the key's index, where every run without a key
        //   had an entry too), and are now one, or two with a key. Rebuilding `runs`, which
        //   other tables reference, runs with foreign keys off; `sqlite::migrate` checks them
        //   before it commits.
        "
    CREATE TABLE runs_clustered (
        id TEXT PRIMARY KEY,
        workflow TEXT NOT NULL,
        version TEXT NOT NULL,
        status TEXT NOT NULL,
        input TEXT NOT NULL,
        input_digest TEXT NOT NULL,
        output TEXT,
        failure TEXT,
        idempotency_key TEXT,
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL,
        lease_owner TEXT,
        lease_epoch INTEGER NOT NULL DEFAULT 0,
        lease_expires_ms INTEGER
    ) WITHOUT ROWID;
    INSERT INTO runs_clustered (id, workflow, version, status, input, input_digest, output, failure, idempotency_key, created_ms, updated_ms, lease_owner, lease_epoch, lease_expires_ms)
        SELECT id, workflow, version, status, input, input_digest, output, failure, idempotency_key, created_ms, updated_ms, lease_owner, lease_epoch, lease_expires_ms FROM runs;
    DROP TABLE runs;
    ALTER TABLE runs_clustered RENAME TO runs;
    CREATE UNIQUE INDEX runs_by_idempotency_key ON runs (idempotency_key) WHERE idempotency_key IS NOT NULL;
    CREATE INDEX runs_unfinished ON runs (created_ms) WHERE status IN ('pending', 'running');
    ",
    ),
    (
        8,
        // SQLite only: the event log becomes a rowid table. Every run gets a number
        // (`runs.num`, handed out by `run_numbers`), and an event's key is that number shifted
        // left by 24 bits plus the event's sequence number in its run, so a run's events are
        // one range of keys, in order. A table keyed by (run id, seq) is an index b-tree, which
        // SQLite rebalances across three pages whenever its last page fills; a rowid table
        // growing at its end just starts a new page. Measured in `benches/README.md`: the WAL
        // frames a run writes fall by about a third. `sqlite::migrate::precheck` refuses the
        // upgrade if an event belongs to no run (it would have no key) or a run has 2^24 events.
        "
    CREATE TABLE run_numbers (last INTEGER NOT NULL);
    ALTER TABLE runs ADD COLUMN num INTEGER;
    UPDATE runs SET num = numbered.n
        FROM (SELECT id, row_number() OVER (ORDER BY created_ms, id) AS n FROM runs) AS numbered
        WHERE numbered.id = runs.id;
    INSERT INTO run_numbers SELECT COALESCE(MAX(num), 0) FROM runs;
    CREATE TABLE events_keyed (
        key INTEGER PRIMARY KEY,
        at_ms INTEGER NOT NULL,
        kind TEXT NOT NULL,
        step_id TEXT,
        data TEXT NOT NULL,
        attempt INTEGER,
        record TEXT
    );
    INSERT INTO events_keyed SELECT (r.num << 24) + e.seq, e.at_ms, e.kind, e.step_id, e.data, e.attempt, e.record
        FROM events e JOIN runs r ON r.id = e.run_id;
    DROP TABLE events;
    ALTER TABLE events_keyed RENAME TO events;
    ",
    ),
    (
        9,
        // When a run's payloads were purged (`weir runs purge`, or its workflow's
        // `[retention]`): the run keeps its metadata and costs.
        "
    ALTER TABLE runs ADD COLUMN purged_ms INTEGER;
    ",
    ),
    (
        10,
        // The daily usage rollup the dashboard's costs page reads (store/usage.rs),
        // filled from the calls already journaled.
        "
    CREATE TABLE usage_daily (
        day TEXT NOT NULL,
        workflow TEXT NOT NULL,
        version TEXT NOT NULL,
        step_id TEXT NOT NULL,
        model TEXT NOT NULL,
        calls INTEGER NOT NULL,
        cached INTEGER NOT NULL,
        failed INTEGER NOT NULL,
        prompt_tokens INTEGER NOT NULL,
        completion_tokens INTEGER NOT NULL,
        cost_micros INTEGER NOT NULL,
        latency_us INTEGER NOT NULL,
        lat_0 INTEGER NOT NULL DEFAULT 0,
        lat_1 INTEGER NOT NULL DEFAULT 0,
        lat_2 INTEGER NOT NULL DEFAULT 0,
        lat_3 INTEGER NOT NULL DEFAULT 0,
        lat_4 INTEGER NOT NULL DEFAULT 0,
        lat_5 INTEGER NOT NULL DEFAULT 0,
        lat_6 INTEGER NOT NULL DEFAULT 0,
        lat_7 INTEGER NOT NULL DEFAULT 0,
        lat_8 INTEGER NOT NULL DEFAULT 0,
        lat_9 INTEGER NOT NULL DEFAULT 0,
        lat_10 INTEGER NOT NULL DEFAULT 0,
        lat_11 INTEGER NOT NULL DEFAULT 0,
        lat_12 INTEGER NOT NULL DEFAULT 0,
        lat_13 INTEGER NOT NULL DEFAULT 0,
        lat_14 INTEGER NOT NULL DEFAULT 0,
        lat_15 INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (day, workflow, version, step_id, model)
    );
    INSERT INTO usage_daily (day, workflow, version, step_id, model, calls, cached, failed,
        prompt_tokens, completion_tokens, cost_micros, latency_us,
        lat_0, lat_1, lat_2, lat_3, lat_4, lat_5, lat_6, lat_7, lat_8, lat_9, lat_10, lat_11, lat_12, lat_13, lat_14, lat_15)
        SELECT strftime('%Y-%m-%d', at_ms / 1000, 'unixepoch'), workflow, version, step_id, COALESCE(model, alias), COUNT(*),
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
    (
        11,
        // Rollouts (store/rollouts.rs): at most one not over per workflow.
        "
    CREATE TABLE rollouts (
        id TEXT PRIMARY KEY,
        workflow TEXT NOT NULL,
        active INTEGER NOT NULL,
        revision INTEGER NOT NULL,
        doc TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL
    );
    CREATE INDEX rollouts_by_workflow ON rollouts (workflow, created_ms);
    CREATE UNIQUE INDEX rollouts_one_active ON rollouts (workflow) WHERE active = 1;
    CREATE TABLE rollout_events (
        rollout_id TEXT NOT NULL REFERENCES rollouts (id),
        seq INTEGER NOT NULL,
        at_ms INTEGER NOT NULL,
        kind TEXT NOT NULL,
        data TEXT NOT NULL,
        PRIMARY KEY (rollout_id, seq)
    );
    ",
    ),
    (
        12,
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
        cost_micros INTEGER NOT NULL,
        at_ms INTEGER NOT NULL
    );
    CREATE INDEX shadow_results_by_step ON shadow_results (workflow, step_id, at_ms);
    CREATE INDEX shadow_results_by_run ON shadow_results (run_id);
    ",
    ),
    (
        13,
        // Experiments (store/experiments.rs): every `weir eval`.
        "
    CREATE TABLE experiments (
        id TEXT PRIMARY KEY,
        workflow TEXT NOT NULL,
        candidate TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        summary TEXT NOT NULL,
        experiment TEXT NOT NULL
    );
    CREATE INDEX experiments_by_workflow ON experiments (workflow, created_ms);
    ",
    ),
    (
        14,
        // A rerun from a step names the run it reruns.
        "ALTER TABLE runs ADD COLUMN source_run TEXT",
    ),
    (
        15,
        // Step profiles (store/profiles.rs): what each step saw and answered, per window, and
        // the baselines pinned over them. On SQLite a result's counts ride in its own event
        // (`record.profile`) until its run stops, then move to `profile_results` (the run's
        // events up to `runs.profiled_seq` have moved), and are folded into `step_profiles`.
        "
    CREATE TABLE step_profiles (
        workflow TEXT NOT NULL,
        version TEXT NOT NULL,
        step_id TEXT NOT NULL,
        window_ms INTEGER NOT NULL,
        feature TEXT NOT NULL,
        bin TEXT NOT NULL,
        count INTEGER NOT NULL,
        sum REAL NOT NULL,
        PRIMARY KEY (workflow, version, step_id, window_ms, feature, bin)
    ) WITHOUT ROWID;
    CREATE TABLE profile_results (
        id INTEGER PRIMARY KEY,
        workflow TEXT NOT NULL,
        version TEXT NOT NULL,
        step_id TEXT NOT NULL,
        window_ms INTEGER NOT NULL,
        counts TEXT NOT NULL
    );
    ALTER TABLE runs ADD COLUMN profiled_seq INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE baseline_pins (
        id INTEGER PRIMARY KEY,
        workflow TEXT NOT NULL,
        version TEXT NOT NULL,
        from_ms INTEGER NOT NULL,
        to_ms INTEGER NOT NULL,
        source_version TEXT NOT NULL,
        pinned_by TEXT NOT NULL,
        pinned_ms INTEGER NOT NULL,
        reason TEXT NOT NULL
    );
    CREATE INDEX baseline_pins_by_workflow ON baseline_pins (workflow, pinned_ms);
    ",
    ),
];
