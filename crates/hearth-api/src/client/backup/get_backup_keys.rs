//! `GET /_matrix/client/v3/room_keys/keys?version=` — every session of a version.
//! <https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3room_keyskeys>

use axum::Router;
use axum::extract::State;
use hearth_e2ee::RoomKeyScope;
use ruma::api::client::backup::RoomKeyBackup;
use ruma::api::client::backup::get_backup_keys::v3 as endpoint;

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
    let keys = state
        .e2ee
        .room_keys(&user, &body.version, RoomKeyScope::All)
        .await?;
    let rooms = keys
        .into_iter()
        .map(|(room, sessions)| (room, RoomKeyBackup::new(sessions)))
        .collect();
    Ok(RumaResponse(endpoint::Response::new(rooms)))
}
