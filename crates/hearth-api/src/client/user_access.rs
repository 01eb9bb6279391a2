//! Endpoints under `/user/{userId}/...` and the profile setters act on the caller's own data only.

use axum::http::StatusCode;
use ruma::UserId;
use ruma::api::error::ErrorKind;

use crate::{ApiError, Caller};

/// 403 `M_FORBIDDEN` unless `user` is the caller.
pub(crate) fn ensure_self(caller: &Caller, user: &UserId, what: &str) -> Result<(), ApiError> {
    if caller.user_id == user {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorKind::Forbidden,
            format!("you cannot access another user's {what}"),
        ))
    }
}

/// A JSON object from request content, or 400 `M_BAD_JSON`.
pub(crate) fn json_object(
    raw: &serde_json::value::RawValue,
) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    serde_json::from_str(raw.get()).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorKind::BadJson,
            "the content must be a JSON object",
        )
    })
}
