//! `POST /_matrix/federation/v1/user/keys/claim` — one-time (or fallback) keys of local
//! users' devices, for a partner's user starting an encrypted session.
//! <https://spec.matrix.org/v1.16/server-server-api/#post_matrixfederationv1userkeysclaim>

use axum::Router;
use axum::extract::State;
use ruma::api::federation::keys::claim_keys::v1 as endpoint;

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
    tracing::debug!(origin = %request.origin()?, "keys claim");
    let wanted = request
        .body
        .one_time_keys
        .into_iter()
        .filter(|(user, _)| user.server_name() == state.server_name)
        .collect();
    let keys = state.e2ee.claim_keys(&wanted).await?;
    Ok(RumaResponse(endpoint::Response::new(keys)))
}
