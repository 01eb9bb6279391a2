//! `DELETE /_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device` — delete the
//! user's dehydrated device, with its keys and messages (404 `M_NOT_FOUND` when there is none).
//! <https://github.com/matrix-org/matrix-spec-proposals/pull/3814>

use axum::Router;
use axum::extract::State;
use ruma::api::client::dehydrated_device::delete_dehydrated_device::unstable as endpoint;

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
    let device_id = state.e2ee.delete_dehydrated_device(&caller.user_id).await?;
    Ok(RumaResponse(endpoint::Response::new(device_id)))
}
