//! `PUT /_matrix/client/v3/sendToDevice/{eventType}/{txnId}` — send messages straight to
//! devices (encrypted room keys, verification requests). Idempotent per transaction id.
//! <https://spec.matrix.org/v1.16/client-server-api/#put_matrixclientv3sendtodeviceeventtypetxnid>

use axum::Router;
use axum::extract::State;
use ruma::api::client::to_device::send_event_to_device::v3 as endpoint;

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
    state
        .e2ee
        .send_to_device(
            &caller.user_id,
            &caller.device_id,
            &body.event_type.to_string(),
            body.txn_id.as_str(),
            &body.messages,
        )
        .await?;
    Ok(RumaResponse(endpoint::Response::new()))
}
