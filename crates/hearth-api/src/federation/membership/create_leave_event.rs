//! `PUT /_matrix/federation/v2/send_leave/{roomId}/{eventId}` — a partner's signed leave of
//! one of its users, taken through the room's pipeline.
//! <https://spec.matrix.org/v1.16/server-server-api/#put_matrixfederationv2send_leaveroomideventid>

use axum::Router;
use axum::extract::State;
use ruma::api::federation::membership::create_leave_event::v2 as endpoint;

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
    state
        .federation
        .send_leave(&origin, &body.room_id, &body.event_id, &body.pdu)
        .await?;
    Ok(RumaResponse(endpoint::Response::new()))
}
