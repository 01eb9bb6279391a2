//! `GET /_matrix/client/v3/room_keys/version/{version}` — one backup version.
//! <https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3room_keysversionversion>

use axum::Router;
use axum::extract::State;
use ruma::api::client::backup::get_backup_info::v3 as endpoint;

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
    let info = state.e2ee.backup(&user, Some(&body.version)).await?;
    Ok(RumaResponse(endpoint::Response::new(
        super::algorithm_of(&info)?,
        super::count(info.count),
        info.etag,
        info.version,
    )))
}
