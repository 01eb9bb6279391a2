//! `PUT /_matrix/client/v3/rooms/{roomId}/typing/{userId}` — start or stop typing.
//! <https://spec.matrix.org/v1.16/client-server-api/#put_matrixclientv3roomsroomidtypinguserid>

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use ruma::api::client::typing::create_typing_event::v3::{self as endpoint, Typing};
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
    let user = &request.caller()?.user_id;
    state.rate_limits.ephemeral.check(RateKey::user(user))?;
    let body = &request.body;
    if &body.user_id != user {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorKind::Forbidden,
            "you can only set your own typing state",
        ));
    }
    require_joined(&state.rooms, &body.room_id, user).await?;
    let timeout = match body.state {
        Typing::Yes(info) => Some(info.timeout),
        _ => None,
    };
    state.sync.typing().set(&body.room_id, user, timeout);
    // Partners in the room hear of it too (ephemeral, best effort).
    state
        .federation
        .send_typing(&body.room_id, user, timeout.is_some())
        .await;
    Ok(RumaResponse(endpoint::Response::new()))
}
