//! `POST /_matrix/client/v3/keys/query` — the device and cross-signing keys of users.
//! <https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3keysquery>

use axum::Router;
use axum::extract::State;
use ruma::api::client::keys::get_keys::v3 as endpoint;

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
    let caller = request.caller()?.clone();
    let found = state
        .e2ee
        .query_keys(&caller.user_id, &request.body.device_keys)
        .await?;
    let mut response = endpoint::Response::new();
    response.device_keys = found.device_keys;
    response.master_keys = found.master_keys;
    response.self_signing_keys = found.self_signing_keys;
    response.user_signing_keys = found.user_signing_keys;
    response.failures = found.failures;
    Ok(RumaResponse(response))
}
