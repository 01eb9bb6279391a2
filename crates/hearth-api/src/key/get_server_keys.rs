//! `GET /_matrix/key/v2/server` — this server's signing key, signed by itself.
//! <https://spec.matrix.org/v1.16/server-server-api/#get_matrixkeyv2server>

use std::time::SystemTime;

use axum::extract::State;
use axum::{Json, Router};
use ruma::CanonicalJsonObject;
use ruma::api::federation::discovery::get_server_keys::v2 as endpoint;

use crate::ruma_glue::route as route_endpoint;
use crate::{ApiError, ApiState};

pub(crate) fn route(router: Router<ApiState>) -> Router<ApiState> {
    route_endpoint::<endpoint::Request, _, _>(router, handler)
}

async fn handler(State(state): State<ApiState>) -> Result<Json<CanonicalJsonObject>, ApiError> {
    state
        .key
        .server_keys_response(SystemTime::now())
        .map(Json)
        .map_err(ApiError::internal)
}
