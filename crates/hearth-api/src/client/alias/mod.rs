//! Room aliases on this server.

pub(crate) mod create_alias;
pub(crate) mod delete_alias;
pub(crate) mod get_alias;

use axum::http::StatusCode;
use ruma::RoomAliasId;

use crate::{ApiError, ApiState};

/// Aliases of other servers need federation to resolve or manage.
/// Creating or removing an alias of another server's namespace is a bad request (400
/// `M_INVALID_PARAM`): only that server may manage it.
pub(crate) fn require_own(state: &ApiState, alias: &RoomAliasId) -> Result<(), ApiError> {
    if alias.server_name() == state.server_name {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "M_INVALID_PARAM",
            format!(
                "{alias} belongs to {}; aliases here end in :{}",
                alias.server_name(),
                state.server_name
            ),
        ))
    }
}

pub(crate) fn require_local(state: &ApiState, alias: &RoomAliasId) -> Result<(), ApiError> {
    if alias.server_name() == state.server_name {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "M_NOT_FOUND",
            "aliases of other servers can't be resolved without federation",
        ))
    }
}
