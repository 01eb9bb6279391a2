//! `DELETE /_matrix/client/v3/room_keys/version/{version}` — delete a backup version and its keys.
//! <https://spec.matrix.org/v1.16/client-server-api/#delete_matrixclientv3room_keysversionversion>

use axum::Router;
use axum::extract::State;
use ruma::api::client::backup::delete_backup_version::v3 as endpoint;

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
    state.e2ee.delete_backup(&user, &body.version).await?;
    Ok(RumaResponse(endpoint::Response::new()))
}
