//! `GET /.well-known/matrix/server` — where other servers reach this one, when the operator
//! configured it (`[well_known] server`).
//! <https://spec.matrix.org/v1.16/server-server-api/#getwell-knownmatrixserver>

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use ruma::api::error::ErrorKind;
use ruma::api::federation::discovery::discover_homeserver as endpoint;

use crate::ruma_glue::{RumaResponse, route as route_endpoint};
use crate::{ApiError, ApiState};

pub(crate) fn route(router: Router<ApiState>) -> Router<ApiState> {
    route_endpoint::<endpoint::Request, _, _>(router, handler)
}

async fn handler(
    State(state): State<ApiState>,
) -> Result<RumaResponse<endpoint::Response>, ApiError> {
    let server = state.well_known_server.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorKind::NotFound,
            "no server delegation is configured",
        )
    })?;
    Ok(RumaResponse(endpoint::Response::new(server)))
}
