//! `DELETE /_matrix/client/v3/devices/{deviceId}` — log out and remove one of the caller's
//! devices (user-interactive authentication: `m.login.password`).
//! <https://spec.matrix.org/v1.16/client-server-api/#delete_matrixclientv3devicesdeviceid>

use axum::Router;
use axum::extract::State;
use ruma::api::client::device::delete_device::v3 as endpoint;

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
    let user = request.caller()?.user_id.clone();
    let body = request.body;
    // A device the user does not have is 404 before any password is asked for.
    state.accounts.device(&user, &body.device_id).await?;
    let uia = UiaRequest::password(format!("DELETE /devices/{}", body.device_id), &user);
    let authorized = state
        .uia
        .authorize(&state, &uia, body.auth.as_ref())
        .await?;
    // Deleting the device also deletes its access tokens.
    state
        .accounts
        .delete_devices(&user, &[body.device_id])
        .await?;
    authorized.finish();
    Ok(RumaResponse(endpoint::Response::new()))
}
