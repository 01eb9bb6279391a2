//! `DELETE /_matrix/client/v3/directory/room/{roomAlias}` — remove an alias.
//! <https://spec.matrix.org/v1.16/client-server-api/#delete_matrixclientv3directoryroomroomalias>

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use ruma::api::client::alias::delete_alias::v3 as endpoint;
use ruma::api::error::ErrorKind;

use crate::client::room_access::require_state_power;
use crate::extract::Ruma;
use crate::rate_limit::RateKey;
use crate::ruma_glue::{RumaResponse, route as route_endpoint};
use crate::{ApiError, ApiState};

pub(crate) fn route(router: Router<ApiState>) -> Router<ApiState> {
    route_endpoint::<endpoint::Request, _, _>(router, handler)
}

async fn handler(
    State(state): State<ApiState>,
    request: Ruma<endpoint::Request>,
) -> Result<RumaResponse<endpoint::Response>, ApiError> {
    let caller = request.caller()?.clone();
    state
        .rate_limits
        .settings
        .check(RateKey::user(&caller.user_id))?;
    let alias = &request.body.room_alias;
    super::require_own(&state, alias)?;
    let store = state.rooms.store();
    let (room, creator) = store.alias(alias).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorKind::NotFound,
            "no room has this alias",
        )
    })?;
    // The alias's creator, a server admin, or whoever may change the room's canonical alias.
    if creator != caller.user_id && !caller.is_admin {
        require_state_power(&state, &room, &caller.user_id, "m.room.canonical_alias").await?;
    }
    store.delete_alias(alias).await?;
    super::drop_from_canonical(&state, &room, &caller.user_id, alias).await;
    Ok(RumaResponse(endpoint::Response::new()))
}
