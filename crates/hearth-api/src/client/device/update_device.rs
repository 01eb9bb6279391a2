//! `PUT /_matrix/client/v3/devices/{deviceId}` — rename one of the caller's devices.
//! <https://spec.matrix.org/v1.16/client-server-api/#put_matrixclientv3devicesdeviceid>

use axum::Router;
use axum::extract::State;
use ruma::api::client::device::update_device::v3 as endpoint;

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
    let user = &request.caller()?.user_id;
    let body = &request.body;
    match &body.display_name {
        Some(name) => {
            state
                .accounts
                .rename_device(user, &body.device_id, Some(name))
                .await?
        }
        // No `display_name`: the name stays as it is; the device must still exist (404).
        None => drop(state.accounts.device(user, &body.device_id).await?),
    }
    Ok(RumaResponse(endpoint::Response::new()))
}
