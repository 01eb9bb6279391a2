//! `POST /_matrix/client/v3/keys/query` — the device and cross-signing keys of users, local
//! ones from here and remote ones from their servers (partners only; others are `failures`).
//! <https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3keysquery>

use std::collections::BTreeMap;

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
    let (local, remote): (BTreeMap<_, _>, BTreeMap<_, _>) = request
        .body
        .device_keys
        .into_iter()
        .partition(|(user, _)| user.server_name() == state.server_name);
    // Partners are asked while the local keys are read.
    let (found, from_partners) = tokio::join!(
        state.e2ee.query_keys(&caller.user_id, &local),
        state.federation.query_keys(remote, request.body.timeout),
    );
    let found = found?;
    let mut response = endpoint::Response::new();
    response.device_keys = found.device_keys;
    response.device_keys.extend(from_partners.device_keys);
    response.master_keys = found.master_keys;
    response.master_keys.extend(from_partners.master_keys);
    response.self_signing_keys = found.self_signing_keys;
    response
        .self_signing_keys
        .extend(from_partners.self_signing_keys);
    response.user_signing_keys = found.user_signing_keys;
    response.failures = from_partners.failures;
    Ok(RumaResponse(response))
}
