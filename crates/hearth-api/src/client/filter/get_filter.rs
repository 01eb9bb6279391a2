//! `GET /_matrix/client/v3/user/{userId}/filter/{filterId}` — download a filter.
//! <https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3useruseridfilterfilterid>

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use ruma::api::client::filter::{FilterDefinition, get_filter::v3 as endpoint};
use ruma::api::error::ErrorKind;

use crate::client::user_access::ensure_self;
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
    let body = &request.body;
    ensure_self(request.caller()?, &body.user_id, "filters")?;
    let json = state
        .rooms
        .store()
        .filter(&body.user_id, &body.filter_id)
        .await?
        .ok_or_else(|| {
            ApiError::new(StatusCode::NOT_FOUND, ErrorKind::NotFound, "no such filter")
        })?;
    let filter: FilterDefinition = serde_json::from_str(&json).map_err(ApiError::internal)?;
    Ok(RumaResponse(endpoint::Response::new(filter)))
}
