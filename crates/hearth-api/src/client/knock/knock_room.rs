//! `POST /_matrix/client/v3/knock/{roomIdOrAlias}` — ask to join a room. Members with the
//! power to invite let the knocker in by inviting them; the knocker takes the knock back by
//! leaving.
//! <https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3knockroomidoralias>

use axum::Router;
use axum::extract::State;
use ruma::api::client::knock::knock_room::v3 as endpoint;

use crate::client::membership::{resolve_room, set_membership};
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
    let user = request.caller()?.user_id.clone();
    let body = request.body;
    let (room, _) = resolve_room(&state, &body.room_id_or_alias).await?;
    // The auth rules decide: the join rule must allow knocking (room version 7 and later) and
    // the user must not be in the room or banned from it.
    set_membership(&state, &room, &user, &user, "knock", body.reason.as_deref()).await?;
    Ok(RumaResponse(endpoint::Response::new(room)))
}
