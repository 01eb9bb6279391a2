//! `GET /_matrix/federation/v1/openid/userinfo` — who an OpenID token (from
//! `POST /user/{userId}/openid/request_token`) belongs to; 401 `M_UNKNOWN_TOKEN` when it is
//! unknown or expired.
//! <https://spec.matrix.org/v1.16/server-server-api/#get_matrixfederationv1openiduserinfo>

use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use ruma::api::error::ErrorKind;
use ruma::api::federation::openid::get_openid_userinfo::v1 as endpoint;

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
    let user = state
        .accounts
        .openid()
        .user_of(&request.body.access_token, Instant::now())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorKind::UnknownToken(Default::default()),
                "unknown or expired OpenID token",
            )
        })?;
    Ok(RumaResponse(endpoint::Response::new(user)))
}
