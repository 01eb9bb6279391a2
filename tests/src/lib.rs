//! Helpers shared by the workspace-level integration tests and their helper binaries.

use anyhow::Context;
use hearth_config::SqliteSynchronous;
use hearth_store::Store;

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
