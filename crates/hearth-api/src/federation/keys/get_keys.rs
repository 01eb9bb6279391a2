//! `POST /_matrix/federation/v1/user/keys/query` — the device, master and self-signing keys
//! of local users (a user-signing key is its owner's business, and remote users are not
//! ours to answer for).
//! <https://spec.matrix.org/v1.16/server-server-api/#post_matrixfederationv1userkeysquery>

use axum::Router;
use axum::extract::State;
use ruma::api::federation::keys::get_keys::v1 as endpoint;

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
    tracing::debug!(origin = %request.origin()?, "keys query");
    let wanted = request
        .body
        .device_keys
        .into_iter()
        .filter(|(user, _)| user.server_name() == state.server_name)
        .collect();
    let found = state.e2ee.query_keys_for_server(&wanted).await?;
    let mut response = endpoint::Response::new(found.device_keys);
    response.master_keys = found.master_keys;
    response.self_signing_keys = found.self_signing_keys;
    Ok(RumaResponse(response))
}
