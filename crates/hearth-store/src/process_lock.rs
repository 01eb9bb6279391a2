//! One Hearth process per database. Stream positions, state-group ids and caches live in the
//! memory of the process that writes; a second writer would hand out the same positions and
//! serve stale caches. So `hearth serve` takes an exclusive lock before it opens the database,
//! and a second one on the same data refuses to start:
//!
//! - SQLite: an advisory lock on a file beside the database (`hearth.db.lock`), which the
//!   kernel releases when the process ends, however it ends;
//! - PostgreSQL: a session advisory lock on a connection of its own, held for the process's
//!   life (released when the connection closes, which a crashed process's does). A keeper task
//!   checks the connection every few seconds; if it was lost (a terminated backend, a database
//!   restart) it connects again and takes the lock back, and if another process took it in the
//!   meantime the lock reports itself lost (`lost()`), and the server stops.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use std::time::Duration;

use hearth_config::{Config, DatabaseBackend};
use sqlx::Connection;
use tokio::sync::{oneshot, watch};

use crate::StoreError;

/// The advisory lock key of a Hearth database ("HEARTH" in ASCII, as a number); migrations use
/// another.
const PG_LOCK_KEY: i64 = 0x4845_4152_5448;

/// How often the PostgreSQL lock's connection is checked.
const PG_CHECK_EVERY: Duration = Duration::from_secs(5);

/// The lock: held while it lives.
#[derive(Debug)]
pub struct ProcessLock {
    held: Held,
    lost: watch::Receiver<bool>,
    /// A file lock is never lost while the process lives: its sender stays here, unused.
    _never_lost: Option<watch::Sender<bool>>,
}

#[derive(Debug)]
enum Held {
    File(File),
    /// The keeper task holds the connection; a message (or the sender's drop) ends it, and it
    /// closes the connection.
    Postgres(oneshot::Sender<()>, tokio::task::JoinHandle<()>),
}

impl ProcessLock {
    /// Take the database's lock, or say which process (by its lock) holds it.
    pub async fn acquire(config: &Config) -> Result<Self, StoreError> {
        match config.database.backend {
            DatabaseBackend::Sqlite => Self::sqlite(&config.sqlite_path()),
            DatabaseBackend::Postgres => {
                let url = config.database.url.as_deref().ok_or(StoreError::Config(
                    "database.url is required for postgres".into(),
                ))?;
                Self::postgres(url).await
            }
        }
    }

    /// Resolves if the lock is lost to another process (PostgreSQL only: after this
    /// process's lock connection died, another process took the lock).
    pub async fn lost(&self) {
        let mut lost = self.lost.clone();
        // An error means the keeper ended, which it does only when released.
        let _ = lost.wait_for(|lost| *lost).await;
        if !*lost.borrow() {
            std::future::pending::<()>().await;
        }
    }

    /// Let the lock go now (a dropped lock goes too, a PostgreSQL one as soon as the server
    /// notices its connection closed).
    pub async fn release(self) {
        match self.held {
            Held::File(file) => drop(file),
            Held::Postgres(stop, keeper) => {
                let _ = stop.send(());
                let _ = keeper.await;
            }
        }
    }

    /// The lock file beside an SQLite database.
    pub fn sqlite_lock_path(database: &Path) -> PathBuf {
        let mut name = database.as_os_str().to_owned();
        name.push(".lock");
        PathBuf::from(name)
    }

    fn sqlite(database: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = database.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Config(format!("cannot create {}: {e}", dir.display())))?;
        }
        let path = Self::sqlite_lock_path(database);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::Config(format!("cannot open {}: {e}", path.display())))?;
        match file.try_lock() {
            Ok(()) => {
                let (never, lost) = watch::channel(false);
                Ok(Self {
                    held: Held::File(file),
                    lost,
                    _never_lost: Some(never),
                })
            }
            Err(TryLockError::WouldBlock) => Err(StoreError::Locked(format!(
                "another Hearth process is using {} (it holds {}); one process per database",
                database.display(),
                path.display()
            ))),
            Err(TryLockError::Error(e)) => Err(StoreError::Config(format!(
                "cannot lock {}: {e}",
                path.display()
            ))),
        }
    }

    async fn postgres(url: &str) -> Result<Self, StoreError> {
        let conn = Self::pg_lock(url).await?.ok_or_else(|| {
            StoreError::Locked(
                "another Hearth process is using this PostgreSQL database (it holds the \
                 database's advisory lock); one process per database"
                    .into(),
            )
        })?;
        let (stop, stopped) = oneshot::channel();
        let (lost_tx, lost) = watch::channel(false);
        let keeper = tokio::spawn(keep(url.to_owned(), conn, stopped, lost_tx));
        Ok(Self {
            held: Held::Postgres(stop, keeper),
            lost,
            _never_lost: None,
        })
    }

    /// A connection holding the lock, or `None` when another session holds it.
    async fn pg_lock(url: &str) -> Result<Option<sqlx::PgConnection>, StoreError> {
        let mut conn = sqlx::PgConnection::connect(url).await?;
        let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(PG_LOCK_KEY)
            .fetch_one(&mut conn)
            .await?;
        Ok(taken.then_some(conn))
    }
}

/// Keep the PostgreSQL lock: check its connection, take the lock again on a new one if the
/// old one died, report it lost if another process has it now.
async fn keep(
    url: String,
    conn: sqlx::PgConnection,
    mut stop: oneshot::Receiver<()>,
    lost: watch::Sender<bool>,
) {
    let mut conn = Some(conn);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            () = tokio::time::sleep(PG_CHECK_EVERY) => {}
        }
        if let Some(held) = conn.as_mut()
            && held.ping().await.is_ok()
        {
            continue;
        }
        conn = None;
        match ProcessLock::pg_lock(&url).await {
            Ok(Some(again)) => {
                tracing::warn!("the database lock's connection was lost; lock taken again");
                conn = Some(again);
            }
            Ok(None) => {
                tracing::error!("the database lock was lost to another Hearth process; stopping");
                let _ = lost.send(true);
                break;
            }
            // The database is away; the writer fails meanwhile. Try again at the next check.
            Err(e) => tracing::warn!(error = %e, "cannot take the database lock again yet"),
        }
    }
    if let Some(conn) = conn
        && let Err(e) = conn.close().await
    {
        tracing::warn!(error = %e, "closing the database lock's connection");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_second_sqlite_lock_is_refused_until_the_first_goes() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("hearth.db");
        let first = ProcessLock::sqlite(&db).unwrap();
        let second = ProcessLock::sqlite(&db).unwrap_err();
        assert!(matches!(second, StoreError::Locked(_)), "{second}");
        assert!(second.to_string().contains("another Hearth process"));
        drop(first);
        ProcessLock::sqlite(&db).unwrap();
    }
}
