//! Account data: JSON objects a client keeps on the server for the user, globally or per room.
//! Stored as they come; `/sync` delivers changes from the account-data stream.

pub(crate) mod get_global_account_data;
pub(crate) mod get_room_account_data;
pub(crate) mod set_global_account_data;
pub(crate) mod set_room_account_data;

use axum::http::StatusCode;
use ruma::api::error::ErrorKind;
use ruma::serde::Raw;

use crate::ApiError;

/// Types the server manages itself; clients set them through their own endpoints.
const SERVER_MANAGED: &[&str] = &["m.fully_read", "m.push_rules"];

/// 405 `M_BAD_JSON` for the types the spec reserves to the server.
pub(crate) fn ensure_client_settable(data_type: &str) -> Result<(), ApiError> {
    if SERVER_MANAGED.contains(&data_type) {
        Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorKind::BadJson,
            format!("{data_type} is managed by the server and cannot be set through account data"),
        ))
    } else {
        Ok(())
    }
}

/// Stored content as a response body, or 404 `M_NOT_FOUND` when there is none.
pub(crate) fn found<T>(content: Option<String>) -> Result<Raw<T>, ApiError> {
    let content = content.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorKind::NotFound,
            "no account data of this type",
        )
    })?;
    let raw = serde_json::value::RawValue::from_string(content).map_err(ApiError::internal)?;
    Ok(Raw::from_json(raw))
}
