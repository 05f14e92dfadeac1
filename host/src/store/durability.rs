//! How hard a commit tries to survive a crash, the same promise on both backends.
//!
//! `normal` survives a crash of Weir: SQLite in WAL mode with `synchronous=NORMAL`, and
//! PostgreSQL with `synchronous_commit = off` for the journal's own writes (the server
//! acknowledges a commit before its WAL is flushed, so a crash of the database server or
//! its machine may lose the commits of its last moments, never corrupt the journal).
//! `full` also survives a power loss: every commit waits for its flush.

/// How hard a commit tries to survive a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Survives a crash of Weir. SQLite: `synchronous=NORMAL` in WAL mode, so a power loss
    /// may lose the last commits. PostgreSQL: `synchronous_commit = off`, so a crash of the
    /// server may lose the commits of its last `3 × wal_writer_delay` (600 ms by default);
    /// budget reservations and lease claims still wait for the flush.
    #[default]
    Normal,
    /// Survives a power loss: every commit is flushed (`synchronous=FULL`,
    /// `synchronous_commit = on`).
    Full,
}

impl std::str::FromStr for Durability {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "normal" => Ok(Self::Normal),
            "full" => Ok(Self::Full),
            other => Err(format!("durability {other:?} is not one of: normal, full")),
        }
    }
}
