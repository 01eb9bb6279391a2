//! `POST /_matrix/client/v3/join/{roomIdOrAlias}` — join a room by id or alias, here or on a
//! partner server (through `via` / `server_name`, or the servers the alias names).
//! <https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3joinroomidoralias>

use axum::Router;
use axum::extract::State;
use ruma::api::client::membership::join_room_by_id_or_alias::v3 as endpoint;

use super::{join, resolve_room};
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
    let (room, mut via) = resolve_room(&state, &body.room_id_or_alias).await?;
    // The servers the client names first, then those the alias's server named.
    via.splice(0..0, body.via.iter().cloned());
    join(&state, &room, &user, &via, body.reason.as_deref()).await?;
    Ok(RumaResponse(endpoint::Response::new(room)))
}
