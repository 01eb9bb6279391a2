//! `PUT /_matrix/federation/v2/invite/{roomId}/{eventId}` — a partner invites one of our
//! users to a room of its: checked as the spec says (400 `M_INVALID_PARAM` for an event that
//! is not a signed invite of the asking server's user for one of ours, or a bad
//! `invite_room_state`; 400 `M_INCOMPATIBLE_ROOM_VERSION` for a version we do not speak),
//! signed by us and answered; the user's sync shows the invite.
//! <https://spec.matrix.org/v1.16/server-server-api/#put_matrixfederationv2inviteroomideventid>

use axum::Router;
use axum::extract::State;
use ruma::api::federation::membership::create_invite::v2 as endpoint;

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
    let signed = state
        .federation
        .receive_invite(
            &origin,
            &body.room_id,
            &body.event_id,
            &body.room_version,
            &body.event,
            &body.invite_room_state,
        )
        .await?;
    Ok(RumaResponse(endpoint::Response::new(signed)))
}
