//! Which store the journal tests run on: SQLite by default; PostgreSQL when
//! `WEIR_TEST_STORE=postgres` (at `WEIR_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`), each test in a schema of its own that is
//! dropped when the test ends.

use std::path::Path;
use std::sync::Arc;

use weir::store::{Durability, PostgresStore, SqliteStore, Store};

/// A test's journal.
pub struct TestStore {
    /// The PostgreSQL URL (with the test's schema), when on PostgreSQL.
    pub url: Option<String>,
    schema: Option<(String, String)>,
}

impl TestStore {
    /// The backend the environment asks for.
    pub fn new() -> Self {
        if std::env::var("WEIR_TEST_STORE").as_deref() != Ok("postgres") {
            return Self {
                url: None,
                schema: None,
            };
        }
        Self::postgres()
    }

    /// A fresh schema on PostgreSQL, whatever the environment says (for fleet tests).
    pub fn postgres() -> Self {
        let base = std::env::var("WEIR_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let schema = format!("weir_test_{}", uuid::Uuid::now_v7().simple());
        run_sql(&base, &format!("CREATE SCHEMA {schema}"));
        let sep = if base.contains('?') { '&' } else { '?' };
        Self {
            url: Some(format!("{base}{sep}options=-csearch_path%3D{schema}")),
            schema: Some((base, schema)),
        }
    }

    /// Opens the journal: the test's schema, or `weir.db` in `data_dir`.
    pub async fn open(&self, data_dir: &Path) -> Arc<dyn Store> {
        match &self.url {
            // Small pools: tests run side by side within PostgreSQL's connection limit.
            Some(url) => Arc::new(
                PostgresStore::connect_with(url, 3, Durability::Normal)
                    .await
                    .unwrap(),
            ),
            None => {
                Arc::new(SqliteStore::open(&data_dir.join("weir.db"), Durability::Normal).unwrap())
            }
        }
    }

    /// Everything the journal holds, as text: the SQLite database file and its WAL byte for
    /// byte (free space and old frames included), or every row of every table of the test's
    /// PostgreSQL schema.
    pub async fn raw_contents(&self, data_dir: &Path) -> String {
        let Some(url) = &self.url else {
            let mut bytes = Vec::new();
            for file in ["weir.db", "weir.db-wal"] {
                bytes.extend(std::fs::read(data_dir.join(file)).unwrap_or_default());
            }
            return String::from_utf8_lossy(&bytes).into_owned();
        };
        use sqlx::{Connection as _, Row as _};
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        let tables: Vec<String> = sqlx::query(
            "SELECT table_name::TEXT FROM information_schema.tables WHERE table_schema = current_schema()",
        )
        .fetch_all(&mut c)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
        let mut text = String::new();
        for table in tables {
            let rows = sqlx::query(&format!("SELECT t::TEXT FROM {table} t"))
                .fetch_all(&mut c)
                .await
                .unwrap();
            for row in rows {
                text.push_str(&row.get::<String, _>(0));
                text.push('\n');
            }
        }
        text
    }

    /// The `weir` arguments that select this journal.
    pub fn cli_args(&self) -> Vec<String> {
        match &self.url {
            Some(url) => vec!["--store".into(), url.clone()],
            None => Vec::new(),
        }
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if let Some((base, schema)) = &self.schema {
            // Best effort: a test that left a connection mid-transaction keeps its schema.
            run_sql(
                base,
                &format!("SET lock_timeout = '5s'; DROP SCHEMA IF EXISTS {schema} CASCADE"),
            );
        }
    }
}

impl TestStore {
    /// Runs `sql` on the test's journal behind the store's back: how a test tampers with a
    /// record to see what reads it make of the change.
    pub fn tamper(&self, data_dir: &Path, sql: &str) {
        match &self.url {
            Some(url) => run_sql(url, sql),
            None => rusqlite::Connection::open(data_dir.join("weir.db"))
                .unwrap()
                .execute_batch(sql)
                .unwrap(),
        }
    }
}

/// Runs one statement on its own runtime and connection (usable from sync code and drops).
fn run_sql(url: &str, sql: &str) {
    let (url, sql) = (url.to_string(), sql.to_string());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            use sqlx::Connection as _;
            let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
            if let Err(e) = sqlx::raw_sql(&sql).execute(&mut c).await {
                eprintln!("{sql}: {e}");
            }
        });
    })
    .join()
    .unwrap();
}
