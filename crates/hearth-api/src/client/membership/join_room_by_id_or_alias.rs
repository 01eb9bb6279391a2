//! `POST /_matrix/client/v3/join/{roomIdOrAlias}` — join a room by id or by local alias.
//! <https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3joinroomidoralias>

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use ruma::OwnedRoomId;
use ruma::api::client::membership::join_room_by_id_or_alias::v3 as endpoint;

use super::set_membership;
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
    let room = match OwnedRoomId::try_from(body.room_id_or_alias.clone()) {
        Ok(room) => room,
        Err(alias) => {
            crate::client::alias::require_local(&state, &alias)?;
            state
                .rooms
                .store()
                .alias(&alias)
                .await?
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::NOT_FOUND,
                        "M_NOT_FOUND",
                        "no room has this alias",
                    )
                })?
                .0
        }
    };
    // NOTSPEC: rooms that live only on other servers need federation to join (not built).
    set_membership(&state, &room, &user, &user, "join", body.reason.as_deref()).await?;
    Ok(RumaResponse(endpoint::Response::new(room)))
}
