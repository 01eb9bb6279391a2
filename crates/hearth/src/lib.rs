//! Hearth as a library: start a complete server from a [`Config`]. The `hearth` binary and the
//! integration tests both start servers through here.

pub mod listener;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use hearth_accounts::{Accounts, PasswordHashing};
use hearth_api::ApiState;
use hearth_config::Config;
use hearth_keys::SigningKey;
use hearth_rooms::Rooms;
use hearth_store::{ProcessLock, Store};
use ruma::ServerName;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Password hashing costs for the configured hardware profile.
pub fn password_hashing(config: &Config) -> PasswordHashing {
    let costs = config.server.profile.argon2();
    PasswordHashing {
        memory_kib: costs.memory_kib,
        iterations: costs.iterations,
        parallelism: costs.parallelism,
    }
}

/// A running server. Dropping it does not stop it; call [`Server::stop`].
#[derive(Debug)]
pub struct Server {
    /// Where the client API listens (useful with port 0).
    pub address: SocketAddr,
    pub store: Store,
    /// One process per database: held until the server is dropped.
    lock: ProcessLock,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Open everything the config names and start listening. Logs where everything is.
    pub async fn start(config: Config, hashing: PasswordHashing) -> anyhow::Result<Self> {
        let server_name = <&ServerName>::try_from(config.server.server_name.as_str())
            .context("server.server_name")?;
        std::fs::create_dir_all(&config.server.data_dir).with_context(|| {
            format!(
                "creating data directory {}",
                config.server.data_dir.display()
            )
        })?;
        // Before anything else touches the data (the signing key, migrations, positions).
        let lock = ProcessLock::acquire(&config)
            .await
            .context("locking the database")?;
        let key_path = config.signing_key_path();
        let (key, created) = SigningKey::load_or_generate(server_name, &key_path)?;
        tracing::info!(path = %key_path.display(), key_id = %key.key_id(), created, "signing key");

        let store = Store::open(&config).await.context("opening the database")?;
        match store.backend_name() {
            "sqlite" => tracing::info!(path = %config.sqlite_path().display(), "database: SQLite"),
            backend => tracing::info!(backend, "database"),
        }
        std::fs::create_dir_all(config.media_path()).with_context(|| {
            format!("creating media directory {}", config.media_path().display())
        })?;
        tracing::info!(path = %config.media_path().display(), "media store: local directory");
        if config.federation.enabled.is_some() {
            tracing::warn!(
                "[federation] enabled is deprecated: use mode = \"off\" | \"allowlist\" | \"open\""
            );
        }
        match config.federation.effective_mode() {
            hearth_config::FederationMode::Off => tracing::info!("federation is off"),
            mode => tracing::info!(
                ?mode,
                partners = config.federation.allow.len(),
                "federation (not served yet: the federation API is still to come)"
            ),
        }
        match (
            config.registration.enabled,
            config.registration.token_required,
        ) {
            (true, false) => tracing::info!("registration is open (m.login.dummy)"),
            (true, true) => tracing::info!("registration is open to registration token holders"),
            (false, _) => {}
        }

        let key = Arc::new(key);
        let accounts = Accounts::new(store.clone(), server_name.to_owned(), hashing);
        // Registrations in progress lived in the memory of the previous run.
        accounts
            .reset_pending_registration_tokens()
            .await
            .context("resetting pending registration token uses")?;
        let rooms = Rooms::with_pdu_cache(
            store.clone(),
            key.clone(),
            config.server.profile.pdu_cache_entries(),
        );
        let typing = hearth_sync::Typing::new(store.notifier().clone());
        let presence = hearth_sync::Presence::new({
            let store = store.clone();
            move |users| store.publish_to_roommates(users)
        });
        let e2ee = hearth_e2ee::E2ee::new(store.clone(), server_name.to_owned());
        let sync =
            hearth_sync::Syncer::new(store.clone(), rooms.clone(), typing, presence, e2ee.clone());
        let app = hearth_api::router(ApiState {
            server_name: server_name.to_owned(),
            key,
            accounts,
            rooms,
            sync,
            e2ee,
            default_room_version: ruma::RoomVersionId::try_from(
                config.rooms.default_version.as_str(),
            )
            .context("rooms.default_version")?,
            registration_enabled: config.registration.enabled,
            registration_token_required: config.registration.token_required,
            guests_enabled: config.registration.guests,
            rate_limits: hearth_api::RateLimits::new(&config.rate_limits),
            uia: hearth_api::UiaSessions::default(),
            well_known_client: config.well_known.client_base_url.clone(),
            well_known_server: config
                .well_known
                .server
                .as_deref()
                .map(ruma::OwnedServerName::try_from)
                .transpose()
                .context("well_known.server")?,
            well_known_support: hearth_api::SupportInfo {
                page: config.well_known.support_page.clone(),
                admins: config.well_known.admin_contacts.clone(),
                security: config.well_known.security_contacts.clone(),
            },
        });
        let listener = tokio::net::TcpListener::bind(config.server.listen)
            .await
            .with_context(|| format!("listening on {}", config.server.listen))?;
        let address = listener.local_addr()?;
        tracing::info!(%address, %server_name, "client API listening");
        let max_connections = listener::connection_cap(
            config
                .server
                .max_connections
                .unwrap_or_else(|| config.server.profile.max_connections()),
        );
        let proxies = config
            .server
            .trusted_proxies
            .iter()
            .map(|p| p.parse::<hearth_config::Cidr>().map_err(anyhow::Error::msg))
            .collect::<anyhow::Result<_>>()
            .context("server.trusted_proxies")?;
        tracing::info!(max_connections, "connection limit");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(listener::serve(
            listener,
            app,
            max_connections,
            listener::TrustedProxies::new(proxies),
            async move {
                let _ = stopped.await;
            },
        ));
        Ok(Self {
            address,
            store,
            lock,
            stop,
            task,
        })
    }

    /// Stop accepting requests, let the ones in flight finish, and wait for it.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        let stopped = self.task.await.context("server task");
        self.lock.release().await;
        stopped??;
        Ok(())
    }

    /// Serve until `shutdown` resolves (then stop gracefully) or the listener fails.
    pub async fn run_until(mut self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        tokio::select! {
            result = &mut self.task => {
                result.context("server task")??;
                Ok(())
            }
            () = shutdown => self.stop().await,
            () = self.lock.lost() => {
                self.stop().await?;
                anyhow::bail!("another Hearth process took the database lock; stopped")
            }
        }
    }
}
