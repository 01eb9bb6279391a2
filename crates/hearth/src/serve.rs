//! `hearth serve`: load the config and run the server until SIGTERM or Ctrl-C.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::Context;
use hearth::Server;
use hearth_config::Config;
use tracing_subscriber::EnvFilter;

pub(crate) fn run(config_path: Option<&Path>) -> anyhow::Result<()> {
    let config = Config::load(config_path, std::env::vars())?;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.logging.level))
        .context("logging.level is not a valid tracing filter")?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match config_path {
            Some(path) => tracing::info!(config = %path.display(), "configuration loaded"),
            None => tracing::info!("no config file given: running on the embedded default"),
        }
        let hashing = hearth::password_hashing(&config);
        let server = Server::start(config, hashing).await?;
        server
            .run_until(async {
                if let Err(e) = shutdown_signal().await {
                    tracing::error!(error = %e, "cannot listen for shutdown signals; stopping");
                }
            })
            .await?;
        tracing::info!("stopped");
        Ok(())
    })
}

async fn shutdown_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await?;
    Ok(())
}
