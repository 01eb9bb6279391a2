//! `hearth serve`: load the config, open the store and keys, and listen.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use hearth_api::ApiState;
use hearth_config::Config;
use hearth_keys::SigningKey;
use hearth_rooms::Rooms;
use hearth_store::Store;
use ruma::ServerName;
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
    runtime.block_on(serve(config, config_path))
}

async fn serve(config: Config, config_path: Option<&Path>) -> anyhow::Result<()> {
    match config_path {
        Some(path) => tracing::info!(config = %path.display(), "configuration loaded"),
        None => tracing::info!("no config file given: running on the embedded default"),
    }
    let server_name = <&ServerName>::try_from(config.server.server_name.as_str())
        .context("server.server_name")?;
    std::fs::create_dir_all(&config.server.data_dir).with_context(|| {
        format!(
            "creating data directory {}",
            config.server.data_dir.display()
        )
    })?;
    let key_path = config.signing_key_path();
    let (key, created) = SigningKey::load_or_generate(server_name, &key_path)?;
    tracing::info!(
        path = %key_path.display(),
        key_id = %key.key_id(),
        created,
        "signing key"
    );

    let store = Store::open(&config).await.context("opening the database")?;
    match store.backend_name() {
        "sqlite" => tracing::info!(path = %config.sqlite_path().display(), "database: SQLite"),
        backend => tracing::info!(backend, "database"),
    }
    std::fs::create_dir_all(config.media_path())
        .with_context(|| format!("creating media directory {}", config.media_path().display()))?;
    tracing::info!(path = %config.media_path().display(), "media store: local directory");
    if !config.federation.enabled {
        tracing::info!("federation is off");
    }

    let key = Arc::new(key);
    // The rooms service is wired now so that its append pipeline is ready for the client API.
    let _rooms = Rooms::new(store, key.clone());
    let app = hearth_api::router(ApiState { key });
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("listening on {}", config.server.listen))?;
    tracing::info!(
        address = %listener.local_addr()?,
        server_name = %server_name,
        "client API listening"
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown())
        .await?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
