//! `GET /_matrix/federation/v1/event_auth/{roomId}/{eventId}` — an event's auth chain.
//! <https://spec.matrix.org/v1.16/server-server-api/#get_matrixfederationv1event_authroomideventid>

use axum::Router;
use axum::extract::State;
use ruma::api::federation::authorization::get_event_authorization::v1 as endpoint;

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
    let chain = state
        .federation
        .read_event_auth(&origin, &body.room_id, &body.event_id)
        .await?;
    Ok(RumaResponse(endpoint::Response::new(
        state.federation.as_sent(&chain).await?,
    )))
}
