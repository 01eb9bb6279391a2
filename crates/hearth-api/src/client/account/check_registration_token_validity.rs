//! `GET /_matrix/client/v1/register/m.login.registration_token/validity` — whether a
//! registration token could be used right now.
//! <https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv1registermloginregistration_tokenvalidity>

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use ruma::api::client::account::check_registration_token_validity::v1 as endpoint;
use ruma::api::error::ErrorKind;

use crate::extract::Ruma;
use crate::rate_limit::{ClientIp, RateKey};
use crate::ruma_glue::{RumaResponse, route as route_endpoint};
use crate::{ApiError, ApiState};

pub(crate) fn route(router: Router<ApiState>) -> Router<ApiState> {
    route_endpoint::<endpoint::Request, _, _>(router, handler)
}

async fn handler(
    State(state): State<ApiState>,
    ClientIp(ip): ClientIp,
    request: Ruma<endpoint::Request>,
) -> Result<RumaResponse<endpoint::Response>, ApiError> {
    // The spec asks for a rate limit here against guessing; it shares registration's.
    state.rate_limits.register.check(RateKey::ip(ip))?;
    if !state.registration_enabled {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorKind::Forbidden,
            "registration is closed on this server",
        ));
    }
    // Uses reserved by abandoned registrations are given back first.
    state.uia.expire(&state).await;
    let valid = state
        .accounts
        .registration_token_valid(&request.body.token)
        .await?;
    Ok(RumaResponse(endpoint::Response::new(valid)))
}
