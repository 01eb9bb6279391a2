//! `GET /_matrix/federation/v1/make_leave/{roomId}/{userId}` — the leave event a partner's
//! user would send to a room of ours (rejecting an invite), for their server to sign.
//! <https://spec.matrix.org/v1.16/server-server-api/#get_matrixfederationv1make_leaveroomiduserid>

use axum::Router;
use axum::extract::State;
use ruma::api::federation::membership::prepare_leave_event::v1 as endpoint;

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
    let (version, template) = state
        .federation
        .make_leave(&origin, &body.room_id, &body.user_id)
        .await?;
    let event = serde_json::value::to_raw_value(&template).map_err(ApiError::internal)?;
    Ok(RumaResponse(endpoint::Response::new(Some(version), event)))
}
