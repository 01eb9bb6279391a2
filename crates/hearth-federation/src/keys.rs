//! Other servers' signing keys: fetched from the server itself (`/_matrix/key/v2/server`),
//! accepted only when every key it lists signed the response and it names the right server,
//! kept in the database and in memory, and served on to partners by the notary
//! (`/_matrix/key/v2/query`).
//!
//! A miss refetches at most once per [`REFETCH_INTERVAL`] per server, so a stream of requests
//! naming unknown keys cannot make us hammer a partner; concurrent misses share one fetch.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use ruma::api::federation::discovery::get_server_keys::v2 as get_server_keys;
use ruma::serde::Base64;
use ruma::signatures::{PublicKeyMap, PublicKeySet};
use ruma::{CanonicalJsonObject, CanonicalJsonValue, OwnedServerName, ServerName};

use hearth_store::{ServerKeyRow, StoredServerKeys};

use crate::{Federation, FederationError};

/// The least time between two fetches of one server's keys on a miss.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// The longest a fetched key is trusted without fetching it again (7 days).
const MAX_TRUST_MS: i64 = 7 * 24 * 3600 * 1000;
/// Servers whose keys are kept in memory (partners are few; strangers are never fetched).
const MAX_SERVERS: usize = 1_024;

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// What is known of one server's keys.
#[derive(Debug, Clone)]
struct Known {
    keys: Vec<ServerKeyRow>,
    response: String,
}

impl Known {
    /// The public key `key_id` if it may verify something signed at `ts` (a current key until
    /// its `valid_until_ts`, an old one until its `expired_ts`).
    fn key_valid_at(&self, key_id: &str, ts: i64) -> Option<&str> {
        self.keys
            .iter()
            .find(|k| k.key_id == key_id)
            .filter(|k| match k.expired_ts {
                Some(expired) => ts < expired,
                None => ts <= k.valid_until_ts,
            })
            .map(|k| k.public_key.as_str())
    }

    /// Until when the response may be used (its `valid_until_ts`).
    fn valid_until(&self) -> i64 {
        self.keys
            .iter()
            .filter(|k| k.expired_ts.is_none())
            .map(|k| k.valid_until_ts)
            .max()
            .unwrap_or(0)
    }
}

/// When a server's keys were last fetched (or attempted), and the lock a fetch holds.
type Fetches = (Option<Instant>, std::sync::Arc<tokio::sync::Mutex<()>>);

#[derive(Debug, Default)]
pub(crate) struct KeyCache {
    memory: Mutex<HashMap<OwnedServerName, Known>>,
    /// When each server's keys were last fetched (or attempted), and the fetch in progress.
    fetches: Mutex<HashMap<OwnedServerName, Fetches>>,
}

impl KeyCache {
    fn remember(&self, server: &ServerName, known: Known) {
        let mut memory = self.memory.lock().unwrap_or_else(|p| p.into_inner());
        if memory.len() >= MAX_SERVERS && !memory.contains_key(server) {
            memory.clear();
        }
        memory.insert(server.to_owned(), known);
    }

    fn get(&self, server: &ServerName) -> Option<Known> {
        self.memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(server)
            .cloned()
    }
}

/// Check a key response `body` that `server` sent about itself, as of `now` (ms): the keys it
/// holds, ready to store.
pub fn verify_key_response(
    server: &ServerName,
    body: &[u8],
) -> Result<(CanonicalJsonObject, Vec<ServerKeyRow>), String> {
    let object: CanonicalJsonObject =
        serde_json::from_slice(body).map_err(|e| format!("not canonical JSON: {e}"))?;
    match object.get("server_name") {
        Some(CanonicalJsonValue::String(name)) if name == server.as_str() => {}
        _ => return Err("the response is about another server".into()),
    }
    let valid_until_ts = match object.get("valid_until_ts") {
        Some(CanonicalJsonValue::Integer(ts)) => i64::from(*ts),
        _ => return Err("no valid_until_ts".into()),
    };
    let keys_of = |field: &str| -> Result<Vec<(String, String, Option<i64>)>, String> {
        let Some(value) = object.get(field) else {
            return Ok(Vec::new());
        };
        let CanonicalJsonValue::Object(keys) = value else {
            return Err(format!("{field} is not an object"));
        };
        keys.iter()
            .map(|(key_id, entry)| {
                let CanonicalJsonValue::Object(entry) = entry else {
                    return Err(format!("{field}.{key_id} is not an object"));
                };
                let Some(CanonicalJsonValue::String(key)) = entry.get("key") else {
                    return Err(format!("{field}.{key_id} has no key"));
                };
                Base64::<ruma::serde::base64::Standard>::parse(key)
                    .map_err(|_| format!("{field}.{key_id} is not base64"))?;
                let expired = match entry.get("expired_ts") {
                    Some(CanonicalJsonValue::Integer(ts)) => Some(i64::from(*ts)),
                    None => None,
                    Some(_) => return Err(format!("{field}.{key_id}.expired_ts is not a number")),
                };
                if !key_id.starts_with("ed25519:") {
                    return Err(format!("{key_id}: only ed25519 keys are known"));
                }
                Ok((key_id.clone(), key.clone(), expired))
            })
            .collect()
    };
    let current = keys_of("verify_keys")?;
    if current.is_empty() {
        return Err("no verify_keys".into());
    }
    // Every current key must have signed the response.
    for (key_id, key, _) in &current {
        let key = Base64::parse(key).map_err(|_| format!("{key_id} is not base64"))?;
        let map = PublicKeyMap::from([(
            server.to_string(),
            PublicKeySet::from([(key_id.clone(), key)]),
        )]);
        ruma::signatures::verify_json(&map, &object)
            .map_err(|e| format!("{key_id} did not sign the response: {e}"))?;
    }
    let mut rows: Vec<ServerKeyRow> = current
        .into_iter()
        .map(|(key_id, public_key, _)| ServerKeyRow {
            key_id,
            public_key,
            valid_until_ts,
            expired_ts: None,
        })
        .collect();
    for (key_id, public_key, expired) in keys_of("old_verify_keys")? {
        if rows.iter().any(|r| r.key_id == key_id) {
            continue;
        }
        rows.push(ServerKeyRow {
            key_id,
            public_key,
            valid_until_ts: expired.unwrap_or(0),
            expired_ts: Some(expired.unwrap_or(0)),
        });
    }
    Ok((object, rows))
}

impl Federation {
    /// The public key `key_id` of `server` for something it signed at `ts` (ms), fetching
    /// the server's keys if they are unknown or too old. The server must be a partner.
    pub async fn server_key(
        &self,
        server: &ServerName,
        key_id: &str,
        ts: i64,
    ) -> Result<Base64, FederationError> {
        self.policy().check(server)?;
        let unknown = |why: String| FederationError::UnknownKey {
            server: server.to_owned(),
            key_id: key_id.to_owned(),
            why,
        };
        let parse =
            |key: &str| Base64::parse(key).map_err(|_| unknown("stored key is not base64".into()));
        if let Some(key) = self
            .known_keys(server)
            .await?
            .as_ref()
            .and_then(|k| k.key_valid_at(key_id, ts))
        {
            return parse(key);
        }
        self.fetch_keys(server).await?;
        match self
            .inner
            .keys
            .get(server)
            .as_ref()
            .and_then(|k| k.key_valid_at(key_id, ts))
        {
            Some(key) => parse(key),
            None => Err(unknown(format!(
                "{server} does not list it as valid at {ts}"
            ))),
        }
    }

    /// Memory, then the database.
    async fn known_keys(&self, server: &ServerName) -> Result<Option<Known>, FederationError> {
        if let Some(known) = self.inner.keys.get(server) {
            return Ok(Some(known));
        }
        let Some(StoredServerKeys { keys, response, .. }) =
            self.inner.store.server_keys(server).await?
        else {
            return Ok(None);
        };
        let known = Known { keys, response };
        self.inner.keys.remember(server, known.clone());
        Ok(Some(known))
    }

    /// Fetch `server`'s keys from it, unless that was tried less than [`REFETCH_INTERVAL`] ago.
    async fn fetch_keys(&self, server: &ServerName) -> Result<(), FederationError> {
        let lock = {
            let mut fetches = self
                .inner
                .keys
                .fetches
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if fetches.len() >= MAX_SERVERS && !fetches.contains_key(server) {
                fetches.clear();
            }
            fetches.entry(server.to_owned()).or_default().1.clone()
        };
        // Concurrent misses wait here for the one fetch, then find its result in memory.
        let _fetching = lock.lock().await;
        {
            let mut fetches = self
                .inner
                .keys
                .fetches
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let last = &mut fetches.entry(server.to_owned()).or_default().0;
            if last.is_some_and(|at| at.elapsed() < REFETCH_INTERVAL) {
                return Ok(());
            }
            *last = Some(Instant::now());
        }
        let (_, body) = self
            .inner
            .client
            .send_unsigned(server, get_server_keys::Request::new())
            .await?;
        let (object, rows) =
            verify_key_response(server, &body).map_err(|why| FederationError::BadResponse {
                server: server.to_owned(),
                why: format!("key response: {why}"),
            })?;
        let response = serde_json::to_string(&object).unwrap_or_default();
        let now = now_ms();
        // The spec's cap (room versions 5 and up): a key is trusted for at most a week past
        // its fetch, whatever the server says; then it is fetched again.
        let mut rows = rows;
        for row in rows.iter_mut().filter(|r| r.expired_ts.is_none()) {
            row.valid_until_ts = row.valid_until_ts.min(now.saturating_add(MAX_TRUST_MS));
        }
        self.inner
            .store
            .put_server_keys(server, &rows, now, &response)
            .await?;
        tracing::info!(%server, keys = rows.len(), "fetched server keys");
        // Memory holds what the database holds (keys the server stopped listing included).
        match self.inner.store.server_keys(server).await? {
            Some(StoredServerKeys { keys, response, .. }) => {
                self.inner.keys.remember(server, Known { keys, response });
            }
            None => self.inner.keys.remember(
                server,
                Known {
                    keys: rows,
                    response,
                },
            ),
        }
        Ok(())
    }

    /// The notary's answer about `server`: its key response (fetched again if it would not
    /// be valid until `minimum_valid_until_ts`), countersigned by us. Only about ourselves and
    /// partners: the notary never fetches for a stranger.
    pub async fn notarised_keys(
        &self,
        server: &ServerName,
        minimum_valid_until_ts: Option<i64>,
    ) -> Result<Option<CanonicalJsonObject>, FederationError> {
        let key = &self.inner.key;
        if server == key.server_name() {
            return key
                .server_keys_response(SystemTime::now())
                .map(Some)
                .map_err(|e| FederationError::Config(e.to_string()));
        }
        if !self.policy().allows(server) {
            return Ok(None);
        }
        let wanted = minimum_valid_until_ts.unwrap_or_else(now_ms);
        let known = match self.known_keys(server).await? {
            Some(known) if known.valid_until() >= wanted => Some(known),
            _ => match self.fetch_keys(server).await {
                Ok(()) => self.inner.keys.get(server),
                Err(e) => {
                    tracing::debug!(%server, error = %e, "notary: cannot fetch keys");
                    self.known_keys(server).await?
                }
            },
        };
        let Some(known) = known else {
            return Ok(None);
        };
        let Ok(mut object) = serde_json::from_str::<CanonicalJsonObject>(&known.response) else {
            return Ok(None);
        };
        key.sign_json(&mut object)
            .map_err(|e| FederationError::Config(e.to_string()))?;
        Ok(Some(object))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use hearth_keys::SigningKey;

    #[test]
    fn a_servers_own_response_is_accepted_and_a_forgery_is_not() {
        let server: &ServerName = "b.test".try_into().unwrap();
        let key = SigningKey::generate(server).unwrap();
        let response = key.server_keys_response(SystemTime::now()).unwrap();
        let body = serde_json::to_vec(&response).unwrap();
        let (_, rows) = verify_key_response(server, &body).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].key_id, key.key_id().as_str());
        assert!(rows[0].valid_until_ts > now_ms());

        // Another server's response.
        let other: &ServerName = "c.test".try_into().unwrap();
        assert!(verify_key_response(other, &body).is_err());

        // Someone else's key swapped in.
        let mut forged = response.clone();
        let evil = SigningKey::generate(server).unwrap();
        let CanonicalJsonValue::Object(keys) = forged.get_mut("verify_keys").unwrap() else {
            panic!()
        };
        keys.insert(
            evil.key_id().to_string(),
            CanonicalJsonValue::Object(CanonicalJsonObject::from([(
                "key".to_owned(),
                CanonicalJsonValue::String(evil.public_key_base64()),
            )])),
        );
        let body = serde_json::to_vec(&forged).unwrap();
        assert!(verify_key_response(server, &body).is_err());
        // A response nobody signed.
        let mut unsigned = response.clone();
        unsigned.remove("signatures");
        let body = serde_json::to_vec(&unsigned).unwrap();
        assert!(verify_key_response(server, &body).is_err());
    }

    #[test]
    fn old_keys_verify_only_what_they_signed_before_they_expired() {
        let known = Known {
            keys: vec![
                ServerKeyRow {
                    key_id: "ed25519:new".into(),
                    public_key: "AAAA".into(),
                    valid_until_ts: 2_000,
                    expired_ts: None,
                },
                ServerKeyRow {
                    key_id: "ed25519:old".into(),
                    public_key: "BBBB".into(),
                    valid_until_ts: 1_000,
                    expired_ts: Some(1_000),
                },
            ],
            response: String::new(),
        };
        assert!(known.key_valid_at("ed25519:new", 2_000).is_some());
        assert!(known.key_valid_at("ed25519:new", 2_001).is_none());
        assert!(known.key_valid_at("ed25519:old", 999).is_some());
        assert!(known.key_valid_at("ed25519:old", 1_000).is_none());
        assert!(known.key_valid_at("ed25519:gone", 1).is_none());
        assert_eq!(known.valid_until(), 2_000);
    }
}
