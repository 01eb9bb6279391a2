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
