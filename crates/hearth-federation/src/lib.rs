//! Federation's rules, without HTTP routing: who this server federates with ([`Policy`]),
//! where other servers live ([`discovery`]), signed requests out ([`client`]) and in
//! ([`inbound`]), and other servers' keys ([`keys`]). The endpoints are in `hearth-api`'s
//! `federation/` and `key/`, one per file.

mod acl;
pub mod client;
pub mod discovery;
pub mod e2ee;
pub mod ephemeral;
mod error;
pub mod inbound;
mod invite;
mod join;
pub mod keys;
mod leave;
mod membership;
mod outbound;
pub mod pdu;
mod policy;
mod queries;
mod reads;
pub mod transaction;

use std::sync::Arc;

use hearth_config::FederationConfig;
use hearth_keys::SigningKey;
use hearth_store::Store;
use ruma::OwnedServerName;

pub use client::Client;
pub use error::FederationError;
pub use inbound::Authorized;
pub use policy::Policy;
pub use queries::RemoteProfile;

/// The federation service: cheap to clone, one per server.
#[derive(Clone, Debug)]
pub struct Federation {
    inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    client: Client,
    key: Arc<SigningKey>,
    store: Store,
    rooms: hearth_rooms::Rooms,
    keys: keys::KeyCache,
    seen: transaction::Seen,
    destinations: outbound::Destinations,
}

impl Federation {
    /// The service `[federation]` describes. Bad partner names, overrides or CA files are
    /// errors here, at start.
    pub fn new(
        config: &FederationConfig,
        own: OwnedServerName,
        key: Arc<SigningKey>,
        rooms: hearth_rooms::Rooms,
    ) -> Result<Self, FederationError> {
        let store = rooms.store().clone();
        let policy = Policy::new(own, config.effective_mode(), &config.allow)?;
        let tls = client::tls_config(config.ca_file.as_deref())?;
        let client = Client::new(policy, key.clone(), tls, &config.overrides)?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                key,
                store,
                rooms,
                keys: keys::KeyCache::default(),
                seen: transaction::Seen::default(),
                destinations: outbound::Destinations::default(),
            }),
        })
    }

    pub fn policy(&self) -> &Policy {
        self.inner.client.policy()
    }

    /// Requests to other servers.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }
}
