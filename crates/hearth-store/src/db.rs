//! The two backends behind one query layer.
//!
//! A query is written once inside [`with_reader!`] or [`with_writer!`]; the macro expands the body for each
//! backend, so the same portable SQL (with `$1`-style placeholders, which SQLite accepts too) is
//! type-checked against both drivers. Where the dialects really differ, the body matches on the
//! backend and keeps both variants side by side.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use hearth_config::SqliteSynchronous;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous as Sync,
};

use crate::StoreError;

#[derive(Clone)]
pub(crate) enum Db {
    /// SQLite allows one writer at a time: the writer pool has exactly one connection, readers
    /// use their own (WAL lets them read while the writer commits).
    Sqlite {
        read: SqlitePool,
        write: SqlitePool,
    },
    Postgres(PgPool),
}

/// Run `$body` with `$pool` bound to the backend's reader pool.
macro_rules! with_reader {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite { read: $pool, .. } => $body,
            $crate::db::Db::Postgres($pool) => $body,
        }
    };
}

/// Run `$body` with `$pool` bound to the backend's writer pool.
macro_rules! with_writer {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite { write: $pool, .. } => $body,
            $crate::db::Db::Postgres($pool) => $body,
        }
    };
}

pub(crate) use {with_reader, with_writer};

const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether a connection coming back to its pool may be handed out again. A dropped transaction
/// is rolled back lazily, so flush that first; if sqlx still counts a transaction as open, its
/// rollback failed (SQLite already rolled back on a full disk or an I/O error, say), and the
/// connection's real state is unknown: close it, which ends any transaction for certain, and
/// let the pool open a fresh one. Reused, such a connection once swallowed every later write
/// into a transaction that never committed.
async fn still_sound<C: sqlx::Connection>(conn: &mut C) -> Result<bool, sqlx::Error> {
    if !conn.is_in_transaction() {
        return Ok(true);
    }
    conn.ping().await?;
    let sound = !conn.is_in_transaction();
    if !sound {
        tracing::warn!("closing a database connection left inside a failed transaction");
    }
    Ok(sound)
}

impl Db {
    pub(crate) async fn open_sqlite(
        path: &Path,
        synchronous: SqliteSynchronous,
        readers: u32,
    ) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Config(format!("cannot create {}: {e}", dir.display())))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL fsyncs the WAL at every commit: an acknowledged write survives a power cut.
            // NORMAL still survives a crash of the process, which is all it risks.
            .synchronous(match synchronous {
                SqliteSynchronous::Full => Sync::Full,
                SqliteSynchronous::Normal => Sync::Normal,
            })
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .after_release(|conn, _| Box::pin(still_sound(conn)))
            .connect_with(options.clone())
            .await?;
        let read = SqlitePoolOptions::new()
            .max_connections(readers.max(1))
            .connect_with(options.read_only(true))
            .await?;
        Ok(Self::Sqlite { read, write })
    }

    pub(crate) async fn open_postgres(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(2))
            .acquire_timeout(Duration::from_secs(30))
            .after_release(|conn, _| Box::pin(still_sound(conn)))
            .connect_with(options)
            .await?;
        Ok(Self::Postgres(pool))
    }

    pub(crate) fn backend_name(&self) -> &'static str {
        match self {
            Self::Sqlite { .. } => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }

    pub(crate) async fn integrity_check(&self) -> Result<Vec<String>, StoreError> {
        match self {
            Self::Sqlite { read, .. } => Ok(sqlx::query_scalar("PRAGMA integrity_check")
                .fetch_all(read)
                .await?),
            Self::Postgres(pool) => {
                let one: i32 = sqlx::query_scalar("SELECT 1").fetch_one(pool).await?;
                Ok(vec![if one == 1 {
                    "ok".to_owned()
                } else {
                    format!("SELECT 1 gave {one}")
                }])
            }
        }
    }
}
