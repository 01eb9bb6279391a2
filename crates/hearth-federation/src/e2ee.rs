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
    /// `keys/query` for remote users (local ones are not looked at), each server asked once.
    pub async fn query_keys(
        &self,
        wanted: BTreeMap<OwnedUserId, Vec<OwnedDeviceId>>,
        timeout: Option<Duration>,
    ) -> RemoteKeys {
        let timeout = timeout.unwrap_or(DEFAULT_TIMEOUT).min(MAX_TIMEOUT);
        let mut tasks = tokio::task::JoinSet::new();
        for (server, users) in by_server(wanted) {
            if server == self.policy().own_name() {
                continue;
            }
            let federation = self.clone();
            tasks.spawn(async move {
                let asked = tokio::time::timeout(
                    timeout,
                    federation
                        .client()
                        .send(&server, get_keys::v1::Request::new(users)),
                )
                .await;
                (server, asked)
            });
        }
        let mut found = RemoteKeys::default();
        while let Some(Ok((server, asked))) = tasks.join_next().await {
            match asked {
                Ok(Ok(response)) => {
                    found.device_keys.extend(own(&server, response.device_keys));
                    found.master_keys.extend(own(&server, response.master_keys));
                    found
                        .self_signing_keys
                        .extend(own(&server, response.self_signing_keys));
                }
                Ok(Err(e)) => {
                    tracing::debug!(%server, error = %e, "remote keys/query failed");
                    found.failures.insert(server.to_string(), failure(&e));
                }
                Err(_) => {
                    found.failures.insert(
                        server.to_string(),
                        json!({ "status": 504, "message": "timed out" }),
                    );
                }
            }
        }
        found
    }

    /// `keys/claim` for remote users' devices, each server asked once.
    pub async fn claim_keys(
        &self,
        wanted: claim_keys::v1::OneTimeKeyClaims,
        timeout: Option<Duration>,
    ) -> (ClaimedKeys, BTreeMap<String, Value>) {
        let timeout = timeout.unwrap_or(DEFAULT_TIMEOUT).min(MAX_TIMEOUT);
        let mut tasks = tokio::task::JoinSet::new();
        for (server, claims) in by_server(wanted) {
            if server == self.policy().own_name() {
                continue;
            }
            let federation = self.clone();
            tasks.spawn(async move {
                let asked = tokio::time::timeout(
                    timeout,
                    federation
                        .client()
                        .send(&server, claim_keys::v1::Request::new(claims)),
                )
                .await;
                (server, asked)
            });
        }
        let mut keys = ClaimedKeys::new();
        let mut failures = BTreeMap::new();
        while let Some(Ok((server, asked))) = tasks.join_next().await {
            match asked {
                Ok(Ok(response)) => keys.extend(own(&server, response.one_time_keys)),
                Ok(Err(e)) => {
                    tracing::debug!(%server, error = %e, "remote keys/claim failed");
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
        (keys, failures)
    }
}
