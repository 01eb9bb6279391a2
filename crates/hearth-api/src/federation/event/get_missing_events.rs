//! `POST /_matrix/federation/v1/get_missing_events/{roomId}` — the events before
//! `latest_events` back to `earliest_events`, oldest first (at most
//! `hearth_federation::reads::MAX_EVENTS`).
//! <https://spec.matrix.org/v1.16/server-server-api/#post_matrixfederationv1get_missing_eventsroomid>

use axum::Router;
use axum::extract::State;
use ruma::api::federation::event::get_missing_events::v1 as endpoint;

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
    let events = state
        .federation
        .read_missing(
            &origin,
            &body.room_id,
            &body.earliest_events,
            &body.latest_events,
            usize::try_from(u64::from(body.limit)).unwrap_or(usize::MAX),
            u64::from(body.min_depth),
        )
        .await?;
    Ok(RumaResponse(endpoint::Response::new(
        state.federation.as_sent(&events).await?,
    )))
}
