//! `POST /_matrix/client/v3/keys/claim` — claim one-time keys (or fallback keys) of devices
//! to start encrypted sessions with them; remote users' keys are claimed from their servers.
//! <https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3keysclaim>

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use ruma::api::client::keys::claim_keys::v3 as endpoint;
use ruma::api::error::ErrorKind;

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
    request.caller()?;
    let claims: usize = request.body.one_time_keys.values().map(|d| d.len()).sum();
    if claims > hearth_e2ee::MAX_CLAIMS {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorKind::InvalidParam,
            format!("at most {} devices per claim", hearth_e2ee::MAX_CLAIMS),
        ));
    }
    let (local, remote): (BTreeMap<_, _>, BTreeMap<_, _>) = request
        .body
        .one_time_keys
        .into_iter()
        .partition(|(user, _)| user.server_name() == state.server_name);
    let (claimed, (from_partners, failures)) = tokio::join!(
        state.e2ee.claim_keys(&local),
        state.federation.claim_keys(remote, request.body.timeout),
    );
    let mut keys = claimed?;
    keys.extend(from_partners);
    let mut response = endpoint::Response::new(keys);
    response.failures = failures;
    Ok(RumaResponse(response))
}
