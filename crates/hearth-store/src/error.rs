use std::sync::Arc;

/// Storage failures. The API layer maps these to `M_UNKNOWN` (the cause is logged), except
/// [`StoreError::Conflict`], which the service crates turn into their own domain errors first.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(Arc<sqlx::Error>),
    #[error("schema migration {version} ({name}) failed: {source}")]
    Migration {
        version: i64,
        name: &'static str,
        source: Arc<sqlx::Error>,
    },
    #[error(
        "the database schema is at version {found}, newer than this Hearth knows ({known}); refusing to run an older binary on it"
    )]
    SchemaTooNew { found: i64, known: i64 },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("database configuration: {0}")]
    Config(String),
    /// Another process holds the database's process lock (`process_lock.rs`).
    #[error("{0}")]
    Locked(String),
    #[error("the event writer has stopped")]
    WriterGone,
    /// A row with the same unique key exists already (e.g. a user id that is taken).
    #[error("already exists: {0}")]
    Conflict(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        Self::Database(Arc::new(e))
    }
}

impl StoreError {
    /// Whether the database could not take the request for now — a full disk, an I/O error, a
    /// lost or refused connection, a lock held too long — rather than the request being wrong:
    /// nothing was written, and the same request may succeed later.
    pub fn is_unavailable(&self) -> bool {
        let Self::Database(e) = self else {
            return matches!(self, Self::WriterGone);
        };
        match &**e {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(db) => {
                let code = db.code().unwrap_or_default();
                match code.parse::<i32>() {
                    // SQLite's primary result codes, under the extended ones: BUSY, LOCKED,
                    // NOMEM, READONLY, IOERR, FULL, CANTOPEN, PROTOCOL.
                    Ok(extended) => matches!(extended & 0xff, 5 | 6 | 7 | 8 | 10 | 13 | 14 | 15),
                    // PostgreSQL's SQLSTATE classes: connection exceptions (08), insufficient
                    // resources (53, a full disk among them), operator intervention (57, a
                    // terminated backend among them).
                    Err(_) => {
                        code.starts_with("08") || code.starts_with("53") || code.starts_with("57")
                    }
                }
            }
            _ => false,
        }
    }
}
