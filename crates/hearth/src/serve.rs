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
        .or_else(|_| EnvFilter::try_new(log_filter(&config.logging.level)))
        .context("logging.level is not a valid tracing filter")?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    log_panics();
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

/// A bare level (`info`, `debug`, ...) applies to Hearth's own crates; the libraries under it
/// log warnings only, since some (state resolution) log every event at `info`. A full filter
/// (with `=` or `,`) is taken as it is.
fn log_filter(level: &str) -> String {
    if level.contains(['=', ',']) {
        return level.to_owned();
    }
    const OURS: &[&str] = &[
        "hearth",
        "hearth_accounts",
        "hearth_api",
        "hearth_config",
        "hearth_keys",
        "hearth_rooms",
        "hearth_store",
        "hearth_sync",
    ];
    let mut filter = String::from("warn");
    for target in OURS {
        filter.push_str(&format!(",{target}={level}"));
    }
    filter
}

/// Panics anywhere (a background task included) reach the log, not only stderr.
fn log_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        tracing::error!(panic = %info, "panic");
        default(info);
    }));
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

#[cfg(test)]
mod tests {
    #[test]
    fn a_bare_level_keeps_libraries_quiet() {
        let filter = super::log_filter("info");
        assert!(filter.starts_with("warn,"), "{filter}");
        assert!(filter.contains("hearth_rooms=info"), "{filter}");
        assert!(!filter.contains("ruma"), "{filter}");
        let custom = "info,ruma_state_res=debug";
        assert_eq!(super::log_filter(custom), custom);
    }
}
