//! `POST /_matrix/client/v3/rooms/{roomId}/forget` — stop seeing a room one has left.
//! <https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3roomsroomidforget>

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use ruma::api::client::membership::forget_room::v3 as endpoint;
use ruma::api::error::ErrorKind;

use crate::extract::Ruma;
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
    let room = &request.body.room_id;
    let store = state.rooms.store();
    if store.forget_room(room, user).await? {
        return Ok(RumaResponse(endpoint::Response::new()));
    }
    match store.membership(room, user).await? {
        Some(m)
            if m.membership == "join" || m.membership == "invite" || m.membership == "knock" =>
        {
            Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorKind::Unknown,
                "leave the room before forgetting it",
            ))
        }
        // Never in it, or forgotten already: nothing to forget, which is what was asked.
        _ => Ok(RumaResponse(endpoint::Response::new())),
    }
}
