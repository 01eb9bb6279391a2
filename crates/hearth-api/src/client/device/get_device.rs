//! `GET /_matrix/client/v3/devices/{deviceId}` — one of the caller's devices.
//! <https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3devicesdeviceid>

use axum::Router;
use axum::extract::State;
use ruma::api::client::device::get_device::v3 as endpoint;

use super::to_client;
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
    // Another user's device is as unknown as a device that does not exist: 404.
    let device = state
        .accounts
        .device(&request.caller()?.user_id, &request.body.device_id)
        .await?;
    Ok(RumaResponse(endpoint::Response::new(to_client(device))))
}
