//! `PUT /_matrix/client/v3/room_keys/keys/{roomId}?version=` — store sessions of one room in the current version.
//! <https://spec.matrix.org/v1.16/client-server-api/#put_matrixclientv3room_keyskeysroomid>

use axum::Router;
use axum::extract::State;
use ruma::api::client::backup::add_backup_keys_for_room::v3 as endpoint;

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
    let keys = [(body.room_id, body.sessions)].into_iter().collect();
    let (etag, count) = state
        .e2ee
        .put_room_keys(&user, &body.version, &keys)
        .await?;
    Ok(RumaResponse(endpoint::Response::new(
        etag,
        super::count(count),
    )))
}
