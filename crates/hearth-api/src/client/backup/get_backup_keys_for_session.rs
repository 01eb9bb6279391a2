//! `GET /_matrix/client/v3/room_keys/keys/{roomId}/{sessionId}?version=` — one session of a version (404 `M_NOT_FOUND` when it is not there).
//! <https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3room_keyskeysroomidsessionid>

use axum::Router;
use axum::extract::State;
use hearth_e2ee::RoomKeyScope;
use ruma::api::client::backup::get_backup_keys_for_session::v3 as endpoint;

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
    let mut keys = state
        .e2ee
        .room_keys(
            &user,
            &body.version,
            RoomKeyScope::Session(&body.room_id, &body.session_id),
        )
        .await?;
    let data = keys
        .remove(&body.room_id)
        .and_then(|mut sessions| sessions.remove(&body.session_id))
        .ok_or_else(|| {
            ApiError::new(
                http::StatusCode::NOT_FOUND,
                ruma::api::error::ErrorKind::NotFound,
                "no such session in this backup",
            )
        })?;
    Ok(RumaResponse(endpoint::Response::new(data)))
}
