//! Helpers shared by the workspace-level integration tests and their helper binaries.

pub mod api;
pub mod federation;
pub mod fuzz;
pub mod synapse;

use std::net::SocketAddr;

use anyhow::Context;
use hearth_accounts::PasswordHashing;
use hearth_config::{Config, DatabaseBackend, SqliteSynchronous};
use hearth_store::Store;
use hearth_store::testing::tempfile_free::TempDir;
use serde_json::{Value, json};

/// Open a store from a `--sqlite PATH` / `--postgres URL` style location.
pub async fn open(kind: &str, location: &str) -> anyhow::Result<Store> {
    match kind {
        "--sqlite" => Store::open_sqlite(location.as_ref(), SqliteSynchronous::Full, 4)
            .await
            .context("open sqlite"),
        "--postgres" => Store::open_postgres(location, 8)
            .await
            .context("open postgres"),
        other => anyhow::bail!("unknown store kind {other}"),
    }
}

/// Which database a test server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A real Hearth, in this process, on 127.0.0.1:0 with a temporary data directory.
pub struct TestServer {
    pub server: Option<hearth::Server>,
    pub base: String,
    pub address: SocketAddr,
    /// The configuration it was started with.
    pub config: Config,
    _dir: TempDir,
}

impl TestServer {
    /// Server name `hearth.test`, registration open, cheap password hashing.
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    /// Like [`TestServer::start`], with the config adjusted by `configure` first.
    pub async fn start_with(backend: Backend, configure: impl FnOnce(&mut Config)) -> Self {
        let dir = TempDir::new("hearth-it").expect("temp dir");
        let mut config = Config::default();
        config.server.server_name = "hearth.test".into();
        config.server.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.server.data_dir = dir.path().to_path_buf();
        config.registration.enabled = true;
        // Tests fire requests much faster than people do; a test of the limits sets its own.
        let unthrottled = hearth_config::RateLimit {
            per_second: 10_000.0,
            burst: 100_000,
        };
        for limit in config.rate_limits.every_mut() {
            *limit = unthrottled;
        }
        if backend == Backend::Postgres {
            config.database.backend = DatabaseBackend::Postgres;
            config.database.url = Some(hearth_store::testing::postgres_url().await);
        }
        configure(&mut config);
        let server =
            hearth::Server::start(config.clone(), PasswordHashing::insecure_fast_for_tests())
                .await
                .expect("start hearth");
        let address = server.address;
        Self {
            server: Some(server),
            base: format!("http://{address}"),
            address,
            config,
            _dir: dir,
        }
    }

    pub fn store(&self) -> &Store {
        #[allow(clippy::expect_used)]
        &self.server.as_ref().expect("server running").store
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Register `name` with password `pw` through the UIA dummy flow; returns the access token.
    pub async fn register(&self, name: &str) -> anyhow::Result<String> {
        let client = reqwest::Client::new();
        let body = json!({
            "username": name, "password": "correct horse battery staple",
            "auth": {"type": "m.login.dummy"}
        });
        let response: Value = client
            .post(self.url("/_matrix/client/v3/register"))
            .json(&body)
            .send()
            .await?
            .json()
            .await?;
        response["access_token"]
            .as_str()
            .map(str::to_owned)
            .context(format!("no token in {response}"))
    }
}

/// Run the futures concurrently on the calling task (they may borrow from it, unlike spawned
/// tasks); the outputs come back in order.
pub async fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut pending: Vec<_> = futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    let mut outputs: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (slot, output) in pending.iter_mut().zip(outputs.iter_mut()) {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => {
                        *output = Some(value);
                        *slot = None;
                    }
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}
