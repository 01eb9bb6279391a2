//! Test support: a fresh store on each backend. SQLite lives in a temporary directory;
//! PostgreSQL gets a new database on the server named by `HEARTH_TEST_POSTGRES_URL`
//! (`tests/with-postgres` starts a throwaway server and sets it).

use std::path::PathBuf;

use hearth_config::SqliteSynchronous;
use sqlx::Connection;

use crate::{Store, StoreError};

pub const POSTGRES_URL_VAR: &str = "HEARTH_TEST_POSTGRES_URL";

/// A store and whatever keeps it alive (the temporary directory).
pub struct TestStore {
    pub store: Store,
    pub dir: Option<tempfile_free::TempDir>,
    /// How to open this database again (SQLite file path or PostgreSQL URL).
    pub location: Location,
}

#[derive(Debug, Clone)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Location {
    pub async fn reopen(&self) -> Result<Store, StoreError> {
        match self {
            Self::Sqlite(path) => Store::open_sqlite(path, SqliteSynchronous::Full, 4).await,
            Self::Postgres(url) => Store::open_postgres(url, 8).await,
        }
    }
}

/// A minimal self-deleting directory, so the library needs no tempfile dependency.
pub mod tempfile_free {
    use std::path::{Path, PathBuf};

    #[derive(Debug)]
    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new(prefix: &str) -> std::io::Result<Self> {
            let unique = format!("{prefix}-{}-{}", std::process::id(), super::unique_suffix());
            let path = std::env::temp_dir().join(unique);
            std::fs::create_dir_all(&path)?;
            Ok(Self(path))
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{nanos:x}{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A fresh SQLite store in a temporary directory.
pub async fn sqlite() -> TestStore {
    let dir = tempfile_free::TempDir::new("hearth-test").expect("temp dir");
    let path = dir.path().join("hearth.db");
    let store = Store::open_sqlite(&path, SqliteSynchronous::Full, 4)
        .await
        .expect("open sqlite");
    TestStore {
        store,
        dir: Some(dir),
        location: Location::Sqlite(path),
    }
}

/// The URL of a new, empty PostgreSQL database. Panics with instructions when no server is set.
pub async fn postgres_url() -> String {
    let admin = std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| {
        panic!(
            "{POSTGRES_URL_VAR} is not set: run the tests through `tests/with-postgres` \
             (see README.md), which starts a throwaway PostgreSQL and sets it"
        )
    });
    let name = format!("hearth_test_{}_{}", std::process::id(), unique_suffix());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .expect("connect to test PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let base = admin
        .rsplit_once('/')
        .map_or(admin.as_str(), |(base, _)| base);
    format!("{base}/{name}")
}

/// A fresh store in a new PostgreSQL database.
pub async fn postgres() -> TestStore {
    let url = postgres_url().await;
    let store = Store::open_postgres(&url, 8).await.expect("open postgres");
    TestStore {
        store,
        dir: None,
        location: Location::Postgres(url),
    }
}

/// Fault injection: terminate every other session on the PostgreSQL database `url` names (the
/// server's writer among them), as a crashed backend or a failover would. Returns how many.
pub async fn terminate_other_sessions(url: &str) -> Result<u64, StoreError> {
    let mut conn = sqlx::PgConnection::connect(url).await?;
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(&mut conn)
    .await?;
    conn.close().await?;
    Ok(killed.into_iter().filter(|k| *k).count() as u64)
}
