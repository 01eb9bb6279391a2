//! `POST /_matrix/client/v3/user/{userId}/filter` — upload a filter, get its id.
//! <https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3useruseridfilter>

use axum::Router;
use axum::extract::State;
use ruma::api::client::filter::create_filter::v3 as endpoint;

use crate::client::user_access::ensure_self;
use crate::extract::Ruma;
use crate::rate_limit::RateKey;
use crate::ruma_glue::{RumaResponse, route as route_endpoint};
use crate::{ApiError, ApiState};

pub(crate) fn route(router: Router<ApiState>) -> Router<ApiState> {
    route_endpoint::<endpoint::Request, _, _>(router, handler)
}

async fn handler(
    State(state): State<ApiState>,
    request: Ruma<endpoint::Request>,
) -> Result<RumaResponse<endpoint::Response>, ApiError> {
    let body = &request.body;
    ensure_self(request.caller()?, &body.user_id, "filters")?;
    state
        .rate_limits
        .settings
        .check(RateKey::user(&body.user_id))?;
    // The extractor has already refused a filter that doesn't parse (`M_BAD_JSON`); what is
    // stored is the parsed definition, so that sync reads back exactly what was accepted.
    let json = serde_json::to_string(&body.filter).map_err(ApiError::internal)?;
    let id = state
        .rooms
        .store()
        .create_filter(&body.user_id, &json)
        .await?;
    Ok(RumaResponse(endpoint::Response::new(id)))
}
