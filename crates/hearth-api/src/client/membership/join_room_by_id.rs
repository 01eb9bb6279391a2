//! `POST /_matrix/client/v3/rooms/{roomId}/join` — join a room on this server.
//! <https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3roomsroomidjoin>

use axum::Router;
use axum::extract::State;
use ruma::api::client::membership::join_room_by_id::v3 as endpoint;

use super::{join, require_guest_access};
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
    let caller = request.caller()?;
    let user = caller.user_id.clone();
    if caller.is_guest {
        require_guest_access(&state, &request.body.room_id).await?;
    }
    let body = request.body;
    // No `via` on this endpoint: a room of another server is joined through the server its
    // id names, if it names one.
    join(&state, &body.room_id, &user, &[], body.reason.as_deref()).await?;
    Ok(RumaResponse(endpoint::Response::new(body.room_id)))
}
