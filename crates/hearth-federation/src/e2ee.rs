//! End-to-end encryption across servers: a local client's `keys/query` and `keys/claim` for
//! users of partner servers, asked of each server at once within the client's timeout. What a
//! server answers about users that are not its own is dropped: it may not speak for them.

use std::collections::BTreeMap;
use std::time::Duration;

use ruma::api::federation::keys::{claim_keys, get_keys};
use ruma::encryption::{CrossSigningKey, DeviceKeys};
use ruma::serde::Raw;
use ruma::{OwnedDeviceId, OwnedServerName, OwnedUserId, ServerName};
use serde_json::{Value, json};

use crate::{Federation, FederationError};

/// The spec's default for `timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a client may make us wait.
const MAX_TIMEOUT: Duration = Duration::from_secs(60);

/// What partners told about their users' keys.
#[derive(Debug, Default)]
pub struct RemoteKeys {
    pub device_keys: BTreeMap<OwnedUserId, BTreeMap<OwnedDeviceId, Raw<DeviceKeys>>>,
    pub master_keys: BTreeMap<OwnedUserId, Raw<CrossSigningKey>>,
    pub self_signing_keys: BTreeMap<OwnedUserId, Raw<CrossSigningKey>>,
    /// By server name: the servers that could not be asked, and why.
    pub failures: BTreeMap<String, Value>,
}

/// One-time keys partners handed out, by user and device.
pub type ClaimedKeys = claim_keys::v1::OneTimeKeys;

fn by_server<T>(
    wanted: BTreeMap<OwnedUserId, T>,
) -> BTreeMap<OwnedServerName, BTreeMap<OwnedUserId, T>> {
    let mut grouped: BTreeMap<OwnedServerName, BTreeMap<OwnedUserId, T>> = BTreeMap::new();
    for (user, value) in wanted {
        grouped
            .entry(user.server_name().to_owned())
            .or_default()
            .insert(user, value);
    }
    grouped
}

fn failure(error: &FederationError) -> Value {
    match error {
        FederationError::NotAllowed(_) | FederationError::Ourselves(_) => {
            json!({ "status": 403, "message": error.to_string() })
        }
        FederationError::Remote { status, .. } => {
            json!({ "status": status.as_u16(), "message": error.to_string() })
        }
        _ => json!({ "status": 503, "message": error.to_string() }),
    }
}

fn own<T>(
    server: &ServerName,
    map: BTreeMap<OwnedUserId, T>,
) -> impl Iterator<Item = (OwnedUserId, T)> {
    map.into_iter()
        .filter(move |(user, _)| user.server_name() == server)
}

impl Federation {
    /// Send each remote server its part of `wanted` (built by `request`) at once, within
    /// `timeout`: the answers, and the failures by server name.
    async fn ask_each<T, R>(
        &self,
        wanted: BTreeMap<OwnedUserId, T>,
        timeout: Option<Duration>,
        request: fn(BTreeMap<OwnedUserId, T>) -> R,
    ) -> (
        Vec<(OwnedServerName, R::IncomingResponse)>,
        BTreeMap<String, Value>,
    )
    where
        T: Send + 'static,
        R: ruma::api::OutgoingRequest<
                Authentication = ruma::api::federation::authentication::ServerSignatures,
                PathBuilder = ruma::api::path_builder::SinglePath,
            > + Send
            + 'static,
        R::IncomingResponse: Send,
    {
        let timeout = timeout.unwrap_or(DEFAULT_TIMEOUT).min(MAX_TIMEOUT);
        let mut tasks = tokio::task::JoinSet::new();
        for (server, part) in by_server(wanted) {
            if server == self.policy().own_name() {
                continue;
            }
            let federation = self.clone();
            tasks.spawn(async move {
                let asked =
                    tokio::time::timeout(timeout, federation.client().send(&server, request(part)))
                        .await;
                (server, asked)
            });
        }
        let mut answers = Vec::new();
        let mut failures = BTreeMap::new();
        while let Some(Ok((server, asked))) = tasks.join_next().await {
            match asked {
                Ok(Ok(response)) => answers.push((server, response)),
                Ok(Err(e)) => {
                    tracing::debug!(%server, error = %e, "remote key request failed");
                    failures.insert(server.to_string(), failure(&e));
                }
                Err(_) => {
                    failures.insert(
                        server.to_string(),
                        json!({ "status": 504, "message": "timed out" }),
                    );
                }
            }
        }
        (answers, failures)
    }

    /// `keys/query` for remote users (local ones are not looked at), each server asked once.
    pub async fn query_keys(
        &self,
        wanted: BTreeMap<OwnedUserId, Vec<OwnedDeviceId>>,
        timeout: Option<Duration>,
    ) -> RemoteKeys {
        let (answers, failures) = self
            .ask_each(wanted, timeout, get_keys::v1::Request::new)
            .await;
        let mut found = RemoteKeys {
            failures,
            ..RemoteKeys::default()
        };
        for (server, response) in answers {
            found.device_keys.extend(own(&server, response.device_keys));
            found.master_keys.extend(own(&server, response.master_keys));
            found
                .self_signing_keys
                .extend(own(&server, response.self_signing_keys));
        }
        found
    }

    /// `keys/claim` for remote users' devices, each server asked once.
    pub async fn claim_keys(
        &self,
        wanted: claim_keys::v1::OneTimeKeyClaims,
        timeout: Option<Duration>,
    ) -> (ClaimedKeys, BTreeMap<String, Value>) {
        let (answers, failures) = self
            .ask_each(wanted, timeout, claim_keys::v1::Request::new)
            .await;
        let mut keys = ClaimedKeys::new();
        for (server, response) in answers {
            keys.extend(own(&server, response.one_time_keys));
        }
        (keys, failures)
    }
}
