//! An in-process Hearth for `hearth-load` when no `--url` is given: 127.0.0.1:0, a temporary data
//! directory, SQLite (or a fresh PostgreSQL database), registration open, rate limits lifted.
//! It runs on a runtime of its own so that, as with a separate server process, the load
//! generator's tasks never sit in the server's run queues.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use hearth_accounts::PasswordHashing;
use hearth_config::{Config, DatabaseBackend, RateLimit};
use hearth_store::testing::tempfile_free::TempDir;
use reqwest::Url;
use sqlx::Connection;

/// Far above anything one machine can send, so the limiter never answers 429.
pub const LIFTED: RateLimit = RateLimit {
    per_second: 1_000_000.0,
    burst: 1_000_000,
};

/// A running in-process server.
pub struct InProcess {
    runtime: tokio::runtime::Runtime,
    server: hearth::Server,
    /// PostgreSQL: the admin URL and the database created for this run (dropped at the end).
    database: Option<(String, String)>,
    _dir: TempDir,
    pub base: String,
    pub description: String,
}

impl InProcess {
    /// Start Hearth on SQLite, or on a new database of the PostgreSQL server at `postgres`.
    pub fn start(postgres: Option<&str>, run: &str) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("hearth-server")
            .build()
            .context("building the server runtime")?;
        let dir = TempDir::new("hearth-load").context("temporary data directory")?;
        let mut config = Config::default();
        config.server.server_name = "localhost".to_owned();
        config.server.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.server.data_dir = dir.path().to_path_buf();
        config.registration.enabled = true;
        for limit in config.rate_limits.every_mut() {
            *limit = LIFTED;
        }
        let mut database = None;
        let backend = match postgres {
            None => format!(
                "SQLite ({}, synchronous={:?}, {} reader connections)",
                config.sqlite_path().display(),
                config.database.sqlite_synchronous,
                config.database.max_connections
            ),
            Some(admin) => {
                let name = format!("hearth_load_{run}");
                let url = runtime.block_on(create_database(admin, &name))?;
                config.database.backend = DatabaseBackend::Postgres;
                config.database.url = Some(url);
                let description = format!(
                    "PostgreSQL (database {name}, {} pooled connections)",
                    config.database.max_connections
                );
                database = Some((admin.to_owned(), name));
                description
            }
        };
        let started = runtime.block_on(hearth::Server::start(config, PasswordHashing::default()));
        let server = match started {
            Ok(server) => server,
            Err(e) => {
                if let Some((admin, name)) = &database {
                    let _ = runtime.block_on(drop_database(admin, name));
                }
                return Err(e.context("starting the in-process Hearth"));
            }
        };
        let base = format!("http://{}", server.address);
        let description = format!(
            "in-process Hearth at {base} on {backend}; rate limits lifted for the benchmark \
             (every [rate_limits] entry: {} per second, burst {})",
            LIFTED.per_second, LIFTED.burst
        );
        Ok(Self {
            runtime,
            server,
            database,
            _dir: dir,
            base,
            description,
        })
    }

    /// Stop the server and drop its PostgreSQL database.
    pub fn stop(self) -> anyhow::Result<()> {
        let Self {
            runtime,
            server,
            database,
            _dir,
            ..
        } = self;
        // A graceful stop waits for in-flight requests; long-polls the load generator abandoned
        // could hold it for their full timeout, and nothing here needs them answered.
        let _ = runtime
            .block_on(async { tokio::time::timeout(Duration::from_secs(5), server.stop()).await });
        let dropped = match &database {
            Some((admin, name)) => runtime.block_on(drop_database(admin, name)),
            None => Ok(()),
        };
        runtime.shutdown_timeout(Duration::from_secs(2));
        dropped
    }
}

/// `CREATE DATABASE name` on the server `admin` points at; the new database's URL.
async fn create_database(admin: &str, name: &str) -> anyhow::Result<String> {
    let mut conn = sqlx::PgConnection::connect(admin)
        .await
        .with_context(|| format!("connecting to {admin}"))?;
    // `name` is made here from a fixed prefix and hex digits, never from input.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .with_context(|| format!("CREATE DATABASE {name}"))?;
    let mut url = Url::parse(admin).with_context(|| format!("--postgres {admin}"))?;
    url.set_path(&format!("/{name}"));
    Ok(url.to_string())
}

async fn drop_database(admin: &str, name: &str) -> anyhow::Result<()> {
    let mut conn = sqlx::PgConnection::connect(admin).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .with_context(|| format!("DROP DATABASE {name}"))?;
    Ok(())
}
