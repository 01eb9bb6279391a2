//! `GET /_matrix/federation/v1/state_ids/{roomId}?event_id=` — the ids of the room's state at
//! an event and of that state's auth chain.
//! <https://spec.matrix.org/v1.16/server-server-api/#get_matrixfederationv1state_idsroomid>

use axum::Router;
use axum::extract::State;
use ruma::api::federation::event::get_room_state_ids::v1 as endpoint;

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
    let (pdu_ids, auth_chain_ids) = state
        .federation
        .read_state_ids(&origin, &body.room_id, &body.event_id)
        .await?;
    Ok(RumaResponse(endpoint::Response::new(
        auth_chain_ids,
        pdu_ids,
    )))
}
