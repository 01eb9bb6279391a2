//! Server-side key backup: versions (`/room_keys/version`) and the encrypted sessions in them
//! (`/room_keys/keys`, by all, room and session).

pub(crate) mod add_backup_keys;
pub(crate) mod add_backup_keys_for_room;
pub(crate) mod add_backup_keys_for_session;
pub(crate) mod create_backup_version;
pub(crate) mod delete_backup_keys;
pub(crate) mod delete_backup_keys_for_room;
pub(crate) mod delete_backup_keys_for_session;
pub(crate) mod delete_backup_version;
pub(crate) mod get_backup_info;
pub(crate) mod get_backup_keys;
pub(crate) mod get_backup_keys_for_room;
pub(crate) mod get_backup_keys_for_session;
pub(crate) mod get_latest_backup_info;
pub(crate) mod update_backup_version;

use axum::http::StatusCode;
use hearth_e2ee::BackupVersionInfo;
use ruma::api::client::backup::BackupAlgorithm;
use ruma::serde::Raw;

use ruma::api::error::ErrorKind;

use crate::ApiError;

/// `{algorithm, auth_data}` as the client sent it: the algorithm's name and `auth_data`'s JSON.
pub(crate) fn split_algorithm(raw: &Raw<BackupAlgorithm>) -> Result<(String, String), ApiError> {
    let bad = |what: &str| ApiError::new(StatusCode::BAD_REQUEST, ErrorKind::BadJson, what);
    let value: serde_json::Value =
        serde_json::from_str(raw.json().get()).map_err(|_| bad("the body is not JSON"))?;
    let algorithm = value["algorithm"]
        .as_str()
        .ok_or_else(|| bad("algorithm must be a string"))?;
    let auth_data = value
        .get("auth_data")
        .filter(|a| a.is_object())
        .ok_or_else(|| bad("auth_data must be an object"))?;
    Ok((algorithm.to_owned(), auth_data.to_string()))
}

/// A version's `{algorithm, auth_data}` for a response.
pub(crate) fn algorithm_of(info: &BackupVersionInfo) -> Result<Raw<BackupAlgorithm>, ApiError> {
    let auth_data: serde_json::Value =
        serde_json::from_str(&info.auth_data).map_err(ApiError::internal)?;
    let json = serde_json::json!({ "algorithm": info.algorithm, "auth_data": auth_data });
    serde_json::value::to_raw_value(&json)
        .map(Raw::from_json)
        .map_err(ApiError::internal)
}

/// A count as ruma's integer type.
pub(crate) fn count(n: u64) -> ruma::UInt {
    ruma::UInt::try_from(n).unwrap_or(ruma::UInt::MAX)
}
