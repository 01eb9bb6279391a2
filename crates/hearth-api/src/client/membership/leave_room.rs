//! `POST /_matrix/client/v3/rooms/{roomId}/leave` — leave a room (or decline an invite).
//! <https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3roomsroomidleave>

use axum::Router;
use axum::extract::State;
use ruma::api::client::membership::leave_room::v3 as endpoint;

use super::leave;
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
    let body = &request.body;
    leave(&state, &body.room_id, user, body.reason.as_deref()).await?;
    Ok(RumaResponse(endpoint::Response::new()))
}
