//! `GET /_matrix/federation/v1/event/{eventId}` — one event, to a server with a member in its
//! room.
//! <https://spec.matrix.org/v1.16/server-server-api/#get_matrixfederationv1eventeventid>

use axum::Router;
use axum::extract::State;
use ruma::api::federation::event::get_event::v1 as endpoint;

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
    let pdu = state
        .federation
        .read_event(&origin, &request.body.event_id)
        .await?;
    Ok(RumaResponse(endpoint::Response::new(
        state.server_name.clone(),
        ruma::MilliSecondsSinceUnixEpoch::now(),
        state
            .federation
            .as_sent(std::slice::from_ref(&pdu))
            .await?
            .pop()
            .ok_or_else(|| ApiError::internal("no event"))?,
    )))
}
