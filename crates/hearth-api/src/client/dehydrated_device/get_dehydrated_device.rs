//! `GET /_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device` — the user's
//! dehydrated device, for a new device to rehydrate (404 `M_NOT_FOUND` when there is none).
//! <https://github.com/matrix-org/matrix-spec-proposals/pull/3814>

use axum::Router;
use axum::extract::State;
use ruma::api::client::dehydrated_device::get_dehydrated_device::unstable as endpoint;
use ruma::serde::Raw;

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
    let caller = request.caller()?.clone();
    let (device_id, data) = state.e2ee.dehydrated_device(&caller.user_id).await?;
    let data = serde_json::value::RawValue::from_string(data).map_err(ApiError::internal)?;
    Ok(RumaResponse(endpoint::Response::new(
        device_id,
        Raw::from_json(data),
    )))
}
