//! `POST /_matrix/client/v3/account/password` — change the caller's password
//! (user-interactive authentication: `m.login.password`).
//! <https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3accountpassword>

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use ruma::api::client::account::change_password::v3 as endpoint;
use ruma::api::error::ErrorKind;

use crate::extract::Ruma;
use crate::ruma_glue::{RumaResponse, route as route_endpoint};
use crate::uiaa::UiaRequest;
use crate::{ApiError, ApiState};

pub(crate) fn route(router: Router<ApiState>) -> Router<ApiState> {
    route_endpoint::<endpoint::Request, _, _>(router, handler)
}

async fn handler(
    State(state): State<ApiState>,
    request: Ruma<endpoint::Request>,
) -> Result<RumaResponse<endpoint::Response>, ApiError> {
    // NOTSPEC: the spec lets a client without a session reset its password through an email
    // stage; with only m.login.password on offer, an access token is required.
    let caller = request.caller()?.clone();
    let body = request.body;
    if body.new_password.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorKind::WeakPassword,
            "the new password must not be empty",
        ));
    }
    let uia = UiaRequest::password("POST /account/password", &caller.user_id);
    let authorized = state
        .uia
        .authorize(&state, &uia, body.auth.as_ref())
        .await?;
    // `logout_devices` (default true) logs out every other device; this one stays signed in.
    state
        .accounts
        .change_password(
            &caller.user_id,
            &body.new_password,
            body.logout_devices,
            Some(&caller.device_id),
        )
        .await?;
    authorized.finish();
    tracing::info!(user_id = %caller.user_id, logout_devices = body.logout_devices, "password changed");
    Ok(RumaResponse(endpoint::Response::new()))
}
