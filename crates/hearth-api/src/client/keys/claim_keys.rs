//! `POST /_matrix/client/v3/keys/claim` — claim one-time keys (or fallback keys) of devices
//! to start encrypted sessions with them.
//! <https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3keysclaim>

use axum::Router;
use axum::extract::State;
use ruma::api::client::keys::claim_keys::v3 as endpoint;

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
    let (keys, failures) = state.e2ee.claim_keys(&request.body.one_time_keys).await?;
    let mut response = endpoint::Response::new(keys);
    response.failures = failures;
    Ok(RumaResponse(response))
}
