//! `GET /_matrix/client/v3/devices` — the caller's devices.
//! <https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3devices>

use axum::Router;
use axum::extract::State;
use ruma::api::client::device::get_devices::v3 as endpoint;

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
    let devices = state.accounts.devices(&request.caller()?.user_id).await?;
    Ok(RumaResponse(endpoint::Response::new(
        devices.into_iter().map(to_client).collect(),
    )))
}
