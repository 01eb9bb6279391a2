//! `PUT /_matrix/client/v3/directory/list/room/{roomId}` — publish or withdraw a room.
//! <https://spec.matrix.org/v1.16/client-server-api/#put_matrixclientv3directorylistroomroomid>

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use ruma::api::client::directory::set_room_visibility::v3 as endpoint;
use ruma::api::client::room::Visibility;
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
    let body = request.body;
    // Publishing a room is as much the moderators' call as its canonical alias.
    if !caller.is_admin {
        require_state_power(
            &state,
            &body.room_id,
            &caller.user_id,
            "m.room.canonical_alias",
        )
        .await?;
    }
    let public = match body.visibility {
        Visibility::Public => true,
        Visibility::Private => false,
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorKind::InvalidParam,
                "unknown visibility",
            ));
        }
    };
    state
        .rooms
        .store()
        .set_published(&body.room_id, public)
        .await?;
    Ok(RumaResponse(endpoint::Response::new()))
}
