//! Hearth as a library: start a complete server from a [`Config`]. The `hearth` binary and the
//! integration tests both start servers through here.

pub mod listener;
pub mod tls;

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
use tokio::sync::watch;
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

/// Bind the federation listener and load its certificate (watched for renewals).
async fn federation_listener(
    config: &Config,
    listen: SocketAddr,
) -> anyhow::Result<(tokio::net::TcpListener, tokio_rustls::TlsAcceptor)> {
    let (Some(certificate), Some(private_key)) = (
        config.federation.tls_certificate.as_deref(),
        config.federation.tls_private_key.as_deref(),
    ) else {
        anyhow::bail!("[federation] listen needs tls_certificate and tls_private_key");
    };
    let certificates = tls::Certificates::load(certificate, private_key)
        .context("[federation] TLS certificate")?;
    certificates.watch();
    let acceptor = certificates.acceptor()?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen} for federation"))?;
    tracing::info!(address = %listener.local_addr()?, "federation API listening (TLS)");
    Ok((listener, acceptor))
}

/// A running server. Dropping it does not stop it; call [`Server::stop`].
#[derive(Debug)]
pub struct Server {
    /// Where the client API listens (useful with port 0).
    pub address: SocketAddr,
    /// Where the federation API listens over TLS, if `[federation] listen` is set.
    pub federation_address: Option<SocketAddr>,
    pub store: Store,
    /// The room service (for benchmarks and tests that build rooms faster than clients can).
    pub rooms: Rooms,
    /// One process per database: held until the server is dropped.
    lock: ProcessLock,
    stop: watch::Sender<bool>,
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
            hearth_config::FederationMode::Allowlist if config.federation.allow.is_empty() => {
                tracing::info!("federation: allowlist, with no partners yet ([federation] allow)")
            }
            mode => tracing::info!(
                ?mode,
                partners = ?config.federation.allow,
                "federation"
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
        let room_service = rooms.clone();
        let federation = hearth_federation::Federation::new(
            &config.federation,
            server_name.to_owned(),
            key.clone(),
            rooms.clone(),
        )
        .context("[federation]")?;
        if config.federation.effective_mode() != hearth_config::FederationMode::Off {
            federation.start_sending();
        }
        let state = ApiState {
            server_name: server_name.to_owned(),
            key,
            accounts,
            rooms,
            sync,
            e2ee,
            federation,
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
        };
        let federation_listener = match config.federation.listen {
            Some(listen)
                if config.federation.effective_mode() != hearth_config::FederationMode::Off =>
            {
                Some(federation_listener(&config, listen).await?)
            }
            Some(_) => {
                tracing::info!("federation is off: [federation] listen is not served");
                None
            }
            None => None,
        };
        let federation_app = hearth_api::federation_router(state.clone());
        let app = hearth_api::router(state);
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
        let (stop, stopped) = watch::channel(false);
        let until_stopped = move || {
            let mut stopped = stopped.clone();
            async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            }
        };
        let client = listener::serve(
            listener,
            app,
            max_connections,
            listener::TrustedProxies::new(proxies),
            None,
            until_stopped(),
        );
        let federation_address = match &federation_listener {
            Some((listener, _)) => Some(listener.local_addr()?),
            None => None,
        };
        let federation = federation_listener.map(|(listener, acceptor)| {
            // Partners connect directly: no proxy speaks for them.
            listener::serve(
                listener,
                federation_app,
                max_connections,
                listener::TrustedProxies::default(),
                Some(acceptor),
                until_stopped(),
            )
        });
        let task = tokio::spawn(async move {
            match federation {
                Some(federation) => tokio::try_join!(client, federation).map(|_| ()),
                None => client.await,
            }
        });
        Ok(Self {
            address,
            federation_address,
            store,
            rooms: room_service,
            lock,
            stop,
            task,
        })
    }

    /// Stop accepting requests, let the ones in flight finish, and wait for it.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
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
