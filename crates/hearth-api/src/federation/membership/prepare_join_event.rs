//! `GET /_matrix/federation/v1/make_join/{roomId}/{userId}` — the join event a partner's user
//! would send to a room of ours, for their server to sign; 400 `M_INCOMPATIBLE_ROOM_VERSION`
//! when the room's version is not among `ver`, 403 when the room would not let them in.
//! <https://spec.matrix.org/v1.16/server-server-api/#get_matrixfederationv1make_joinroomiduserid>

use axum::Router;
use axum::extract::State;
use ruma::api::federation::membership::prepare_join_event::v1 as endpoint;

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
        .make_join(&origin, &body.room_id, &body.user_id, &body.ver)
        .await?;
    let event = serde_json::value::to_raw_value(&template).map_err(ApiError::internal)?;
    let mut response = endpoint::Response::new(event);
    response.room_version = Some(version);
    Ok(RumaResponse(response))
}
