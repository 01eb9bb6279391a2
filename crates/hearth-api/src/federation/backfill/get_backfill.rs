//! `GET /_matrix/federation/v1/backfill/{roomId}?v=&limit=` — history from the given events
//! back, oldest first (at most `hearth_federation::reads::MAX_EVENTS`).
//! <https://spec.matrix.org/v1.16/server-server-api/#get_matrixfederationv1backfillroomid>

use axum::Router;
use axum::extract::State;
use ruma::api::federation::backfill::get_backfill::v1 as endpoint;

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
        .read_backfill(
            &origin,
            &body.room_id,
            &body.v,
            usize::try_from(u64::from(body.limit)).unwrap_or(usize::MAX),
        )
        .await?;
    Ok(RumaResponse(endpoint::Response::new(
        state.server_name.clone(),
        ruma::MilliSecondsSinceUnixEpoch::now(),
        state.federation.as_sent(&events).await?,
    )))
}
