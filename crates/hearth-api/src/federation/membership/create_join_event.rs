//! `PUT /_matrix/federation/v2/send_join/{roomId}/{eventId}` — a partner's signed join of one
//! of its users, taken through the room's pipeline; the answer is the room's state before the
//! join and the auth chain of it all.
//! <https://spec.matrix.org/v1.16/server-server-api/#put_matrixfederationv2send_joinroomideventid>

use axum::Router;
use axum::extract::State;
use ruma::api::federation::membership::create_join_event::v2::{self as endpoint, RoomState};

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
    let origin = request.origin()?.to_owned();
    let body = &request.body;
    let (_join, joined) = state
        .federation
        .send_join(&origin, &body.room_id, &body.event_id, &body.pdu)
        .await?;
    let mut room_state = RoomState::new();
    room_state.state = state.federation.as_sent(&joined.state).await?;
    room_state.auth_chain = state.federation.as_sent(&joined.auth_chain).await?;
    Ok(RumaResponse(endpoint::Response::new(room_state)))
}
