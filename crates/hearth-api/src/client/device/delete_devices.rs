//! `POST /_matrix/client/v3/delete_devices` — log out and remove several of the caller's
//! devices (user-interactive authentication: `m.login.password`).
//! <https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3delete_devices>

use std::collections::BTreeSet;

use axum::Router;
use axum::extract::State;
use ruma::api::client::device::delete_devices::v3 as endpoint;

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
    // The session is bound to the set of devices, whatever order the client lists them in.
    let devices: BTreeSet<_> = body.devices.iter().map(|d| d.as_str()).collect();
    let operation = format!(
        "POST /delete_devices {}",
        devices.into_iter().collect::<Vec<_>>().join(",")
    );
    let uia = UiaRequest::password(operation, &user);
    let authorized = state
        .uia
        .authorize(&state, &uia, body.auth.as_ref())
        .await?;
    // Ids the user does not have are skipped, as the spec allows.
    state.accounts.delete_devices(&user, &body.devices).await?;
    authorized.finish();
    Ok(RumaResponse(endpoint::Response::new()))
}
