//! `POST /_matrix/client/v3/join/{roomIdOrAlias}` — join a room by id or by local alias.
//! <https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3joinroomidoralias>

use axum::Router;
use axum::extract::State;
use ruma::api::client::membership::join_room_by_id_or_alias::v3 as endpoint;

use super::{resolve_room, set_membership};
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
    let room = resolve_room(&state, &body.room_id_or_alias).await?;
    // NOTSPEC: rooms that live only on other servers need federation to join (not built).
    set_membership(&state, &room, &user, &user, "join", body.reason.as_deref()).await?;
    Ok(RumaResponse(endpoint::Response::new(room)))
}
