//! `PUT /_matrix/client/v3/room_keys/version/{version}` — replace a version's `auth_data` (its algorithm cannot change).
//! <https://spec.matrix.org/v1.16/client-server-api/#put_matrixclientv3room_keysversionversion>

use axum::Router;
use axum::extract::State;
use ruma::api::client::backup::update_backup_version::v3 as endpoint;

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
    // The body may repeat the version; it must then be the one in the path.
    let named: Option<String> =
        serde_json::from_str::<serde_json::Value>(body.algorithm.json().get())
            .ok()
            .and_then(|v| v.get("version").and_then(|v| v.as_str()).map(str::to_owned));
    if named.is_some_and(|v| v != body.version) {
        return Err(ApiError::new(
            http::StatusCode::BAD_REQUEST,
            ruma::api::error::ErrorKind::InvalidParam,
            "the version in the body is not the one in the path",
        ));
    }
    state
        .e2ee
        .update_backup(&user, &body.version, &algorithm, &auth_data)
        .await?;
    Ok(RumaResponse(endpoint::Response::new()))
}
