//! `GET /.well-known/matrix/client` — where clients find the client-server API, when the
//! operator configured it (`[well_known] client_base_url`).
//! <https://spec.matrix.org/v1.16/client-server-api/#getwell-knownmatrixclient>

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use ruma::api::client::discovery::discover_homeserver::{self as endpoint, HomeserverInfo};
use ruma::api::error::ErrorKind;

use crate::ruma_glue::{RumaResponse, route as route_endpoint};
use crate::{ApiError, ApiState};

pub(crate) fn route(router: Router<ApiState>) -> Router<ApiState> {
    route_endpoint::<endpoint::Request, _, _>(router, handler)
}

async fn handler(State(state): State<ApiState>) -> Result<impl IntoResponse, ApiError> {
    let base_url = state.well_known_client.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorKind::NotFound,
            "no client discovery information is configured",
        )
    })?;
    let response = endpoint::Response::new(HomeserverInfo::new(base_url));
    // Web clients read this from another origin.
    Ok((
        [(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")],
        RumaResponse(response),
    ))
}
