//! `POST /_matrix/client/v3/keys/upload` — publish a device's identity keys, one-time keys and
//! fallback keys.
//! <https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3keysupload>

use axum::Router;
use axum::extract::State;
use ruma::api::client::keys::upload_keys::v3 as endpoint;

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
    let body = request.body;
    let counts = state
        .e2ee
        .upload_keys(
            &caller.user_id,
            &caller.device_id,
            body.device_keys.as_ref(),
            &body.one_time_keys,
            &body.fallback_keys,
        )
        .await?;
    Ok(RumaResponse(endpoint::Response::new(counts)))
}
