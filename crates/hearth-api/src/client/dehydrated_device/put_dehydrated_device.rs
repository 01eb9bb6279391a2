//! `PUT /_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device` — store the user's
//! dehydrated device with its keys, replacing (and deleting) the one they had.
//! <https://github.com/matrix-org/matrix-spec-proposals/pull/3814>

use axum::Router;
use axum::extract::State;
use ruma::api::client::dehydrated_device::put_dehydrated_device::unstable as endpoint;

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
    let body = request.body;
    let upload = hearth_e2ee::DehydratedUpload {
        device_id: &body.device_id,
        display_name: body.initial_device_display_name.as_deref(),
        device_data: body.device_data.json().get(),
        device_keys: &body.device_keys,
        one_time_keys: &body.one_time_keys,
        fallback_keys: &body.fallback_keys,
    };
    state
        .e2ee
        .put_dehydrated_device(&caller.user_id, upload)
        .await?;
    Ok(RumaResponse(endpoint::Response::new(body.device_id)))
}
