//! `POST /_matrix/client/v3/room_keys/version` — start a new backup version, which becomes the current one.
//! <https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3room_keysversion>

use axum::Router;
use axum::extract::State;
use ruma::api::client::backup::create_backup_version::v3 as endpoint;

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
    let (algorithm, auth_data) = super::split_algorithm(&body.algorithm)?;
    let version = state
        .e2ee
        .create_backup(&user, &algorithm, &auth_data)
        .await?;
    Ok(RumaResponse(endpoint::Response::new(version)))
}
