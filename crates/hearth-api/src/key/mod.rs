//! `/_matrix/key/v2/*`: this server's key, and the notary that serves partners' keys on.
//! Unauthenticated by the spec, served on both listeners.

pub(crate) mod get_remote_server_keys;
pub(crate) mod get_remote_server_keys_batch;
pub(crate) mod get_server_keys;

use ruma::serde::Raw;
use ruma::{CanonicalJsonObject, ServerName};

use crate::{ApiError, ApiState};

/// A notary answer holds at most this many servers.
pub(crate) const MAX_NOTARY_SERVERS: usize = 100;

/// The notary's answer about `server` (nothing for a stranger), as the endpoints list it.
pub(crate) async fn notarised<T>(
    state: &ApiState,
    server: &ServerName,
    minimum_valid_until_ts: Option<i64>,
) -> Result<Option<Raw<T>>, ApiError> {
    let Some(object) = state
        .federation
        .notarised_keys(server, minimum_valid_until_ts)
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(raw(&object)?))
}

fn raw<T>(object: &CanonicalJsonObject) -> Result<Raw<T>, ApiError> {
    serde_json::value::to_raw_value(object)
        .map(Raw::from_json)
        .map_err(ApiError::internal)
}
