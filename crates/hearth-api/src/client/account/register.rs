//! `POST /_matrix/client/v3/register` — create an account (closed unless the operator opens it;
//! with `token_required`, only for holders of a registration token).
//! <https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3register>

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use hearth_accounts::DeviceRequest;
use ruma::api::client::account::register::{RegistrationKind, v3 as endpoint};

use crate::extract::Ruma;
use crate::rate_limit::{ClientIp, RateKey};
use crate::ruma_glue::{RumaResponse, route as route_endpoint};
use crate::uiaa::UiaRequest;
use crate::{ApiError, ApiState};

pub(crate) fn route(router: Router<ApiState>) -> Router<ApiState> {
    route_endpoint::<endpoint::Request, _, _>(router, handler)
}

async fn handler(
    State(state): State<ApiState>,
    ClientIp(ip): ClientIp,
    request: Ruma<endpoint::Request>,
) -> Result<RumaResponse<endpoint::Response>, ApiError> {
    state.rate_limits.register.check(RateKey::ip(ip))?;
    let body = request.body;
    if !state.registration_enabled {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "M_FORBIDDEN",
            "registration is closed on this server",
        ));
    }
    if body.kind == RegistrationKind::Guest {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "M_GUEST_ACCESS_FORBIDDEN",
            "guest access is not enabled",
        ));
    }
    let password = body.password.as_deref();
    if body.login_type.is_none() && password.is_none_or(str::is_empty) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "M_MISSING_PARAM",
            "a password is required",
        ));
    }
    // A taken or invalid name is refused before the client goes through the stages (and before
    // a registration token use is reserved for it).
    if let Some(name) = &body.username
        && !state.accounts.available(name).await?
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "M_USER_IN_USE",
            "this username is taken",
        ));
    }
    let uia = UiaRequest::registration(state.registration_token_required);
    let authorized = state
        .uia
        .authorize(&state, &uia, body.auth.as_ref())
        .await?;

    let localpart = match &body.username {
        Some(name) => name.clone(),
        None => crate::uiaa::random_localpart(),
    };
    let device = DeviceRequest {
        device_id: body.device_id.clone(),
        display_name: body.initial_device_display_name.clone(),
        inhibit_login: body.inhibit_login,
        refresh_token: body.refresh_token,
    };
    // On failure `authorized` is dropped and the session kept: the client may retry it, e.g.
    // with another username, without another token use.
    let registered = state
        .accounts
        .register(&localpart, password, device, false)
        .await?;
    if let Some(token) = authorized.registration_token() {
        // The account exists whatever happens here; a failure only leaves the use pending
        // until the next restart.
        if let Err(e) = state.accounts.complete_registration_token(token).await {
            tracing::error!(error = %e, "could not count a registration token use");
        }
    }
    authorized.finish();
    let mut response = endpoint::Response::new(registered.user_id);
    if let Some(session) = registered.session {
        response.access_token = Some(session.access_token);
        response.device_id = Some(session.device_id);
        response.refresh_token = session.refresh_token;
        response.expires_in = session.expires_in;
    }
    Ok(RumaResponse(response))
}
