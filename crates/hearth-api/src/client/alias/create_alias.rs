//! `PUT /_matrix/client/v3/directory/room/{roomAlias}` — create an alias for a room.
//! <https://spec.matrix.org/v1.16/client-server-api/#put_matrixclientv3directoryroomroomalias>

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use hearth_store::StoreError;
use ruma::api::client::alias::create_alias::v3 as endpoint;
use ruma::api::error::ErrorKind;

use crate::client::room_access::require_joined;
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
    let user = request.caller()?.user_id.clone();
    state.rate_limits.settings.check(RateKey::user(&user))?;
    let body = request.body;
    super::require_own(&state, &body.room_alias)?;
    require_joined(&state.rooms, &body.room_id, &user).await?;
    match state
        .rooms
        .store()
        .create_alias(&body.room_alias, &body.room_id, &user)
        .await
    {
        Ok(()) => Ok(RumaResponse(endpoint::Response::new())),
        Err(StoreError::Conflict(_)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorKind::Unknown,
            "this alias exists already",
        )),
        Err(e) => Err(e.into()),
    }
}
