//! `GET /_matrix/federation/v1/user/devices/{userId}` — a local user's devices, their keys and
//! the device-list position they are at.
//! <https://spec.matrix.org/v1.16/server-server-api/#get_matrixfederationv1userdevicesuserid>

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use ruma::api::error::ErrorKind;
use ruma::api::federation::device::get_devices::v1 as endpoint;

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
    tracing::debug!(origin = %request.origin()?, "devices query");
    let user = &request.body.user_id;
    if user.server_name() != state.server_name {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorKind::NotFound,
            "not a user of this server",
        ));
    }
    let found = state.e2ee.devices_for_server(user).await?;
    let stream_id = ruma::UInt::try_from(found.stream_id.max(0)).unwrap_or_default();
    let mut response = endpoint::Response::new(user.clone(), stream_id);
    response.devices = found
        .devices
        .into_iter()
        .map(|(device_id, keys, name)| {
            let mut device = endpoint::UserDevice::new(device_id, keys);
            device.device_display_name = name;
            device
        })
        .collect();
    response.master_key = found.master_key;
    response.self_signing_key = found.self_signing_key;
    Ok(RumaResponse(response))
}
