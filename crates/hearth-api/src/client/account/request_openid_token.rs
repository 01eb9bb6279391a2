//! `POST /_matrix/client/v3/user/{userId}/openid/request_token` — a short-lived token that
//! proves the caller's identity to a third party (widgets, integration managers, calls), which
//! checks it with `GET /_matrix/federation/v1/openid/userinfo`.
//! <https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3useruseridopenidrequest_token>

use std::time::Instant;

use axum::Router;
use axum::extract::State;
use hearth_accounts::OPENID_TOKEN_LIFETIME;
use ruma::api::client::account::request_openid_token::v3 as endpoint;
use ruma::authentication::TokenType;

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
    let user = &request.body.user_id;
    ensure_self(request.caller()?, user, "OpenID token")?;
    state.rate_limits.settings.check(RateKey::user(user))?;
    let token = state.accounts.openid().issue(user, Instant::now());
    Ok(RumaResponse(endpoint::Response::new(
        token,
        TokenType::Bearer,
        state.server_name.clone(),
        OPENID_TOKEN_LIFETIME,
    )))
}
