//! `GET /_matrix/federation/v1/state/{roomId}?event_id=` — the room's state at an event and
//! that state's auth chain.
//! <https://spec.matrix.org/v1.16/server-server-api/#get_matrixfederationv1stateroomid>

use axum::Router;
use axum::extract::State;
use ruma::api::federation::event::get_room_state::v1 as endpoint;

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
    let federation = &state.federation;
    let (pdu_ids, chain_ids) = federation
        .read_state_ids(&origin, &body.room_id, &body.event_id)
        .await?;
    let pdus = federation.read_events(&pdu_ids).await?;
    let chain = federation.read_events(&chain_ids).await?;
    Ok(RumaResponse(endpoint::Response::new(
        federation.as_sent(&chain).await?,
        federation.as_sent(&pdus).await?,
    )))
}
