//! `POST /_matrix/client/v3/register` — create an account (closed unless the operator opens it).
//! <https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3register>

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use hearth_accounts::DeviceRequest;
use ruma::api::client::account::register::{RegistrationKind, v3 as endpoint};
use ruma::api::client::uiaa::AuthData;

use crate::extract::Ruma;
use crate::ruma_glue::{RumaResponse, route as route_endpoint};
use crate::uiaa::UiaFlow;
use crate::{ApiError, ApiState};

pub(crate) fn route(router: Router<ApiState>) -> Router<ApiState> {
    route_endpoint::<endpoint::Request, _, _>(router, handler)
}

async fn handler(
    State(state): State<ApiState>,
    request: Ruma<endpoint::Request>,
) -> Result<RumaResponse<endpoint::Response>, ApiError> {
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
    // One stage: m.login.dummy. Anything else (or nothing) gets the flows to follow.
    match &body.auth {
        Some(AuthData::Dummy(_)) => {}
        _ => return Err(UiaFlow::dummy().challenge()),
    }
    let localpart = match &body.username {
        Some(name) => name.clone(),
        None => crate::uiaa::random_localpart(),
    };
    let password = body.password.as_deref();
    if body.login_type.is_none() && password.is_none_or(str::is_empty) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "M_MISSING_PARAM",
            "a password is required",
        ));
    }
    let device = DeviceRequest {
        device_id: body.device_id.clone(),
        display_name: body.initial_device_display_name.clone(),
        inhibit_login: body.inhibit_login,
    };
    let registered = state
        .accounts
        .register(&localpart, password, device, false)
        .await?;
    let mut response = endpoint::Response::new(registered.user_id);
    if let Some(session) = registered.session {
        response.access_token = Some(session.access_token);
        response.device_id = Some(session.device_id);
    }
    Ok(RumaResponse(response))
}
