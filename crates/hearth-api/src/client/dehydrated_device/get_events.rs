//! `POST /_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device/{deviceId}/events` —
//! the to-device messages the user's dehydrated device received, a page at a time: the
//! `next_batch` of one page asks for the next and acknowledges (deletes) the one before.
//! <https://github.com/matrix-org/matrix-spec-proposals/pull/3814>

use axum::Router;
use axum::extract::State;
use ruma::api::client::dehydrated_device::get_events::unstable as endpoint;
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
    let body = request.body;
    let (events, next_batch) = state
        .e2ee
        .dehydrated_device_events(&caller.user_id, &body.device_id, body.next_batch.as_deref())
        .await?;
    let mut response = endpoint::Response::new(events.into_iter().map(Raw::from_json).collect());
    response.next_batch = Some(next_batch);
    Ok(RumaResponse(response))
}
