//! `GET /_matrix/client/v3/rooms/{roomId}/aliases` — the room's local aliases.
//! <https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3roomsroomidaliases>

use axum::Router;
use axum::extract::State;
use ruma::api::client::room::aliases::v3 as endpoint;

use crate::client::room_access::require_joined;
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
    // NOTSPEC: world-readable rooms should answer non-members too; history visibility applies.
    require_joined(&state.rooms, room, user).await?;
    Ok(RumaResponse(endpoint::Response::new(
        state.rooms.store().aliases_of(room).await?,
    )))
}
