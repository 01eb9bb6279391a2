//! `PUT /_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}` — send a message event.
//! <https://spec.matrix.org/v1.16/client-server-api/#put_matrixclientv3roomsroomidsendeventtypetxnid>

use axum::Router;
use axum::extract::State;
use hearth_rooms::EventDraft;
use ruma::api::client::message::send_message_event::v3 as endpoint;

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
    request.require_body()?;
    let body = request.body;
    let content =
        serde_json::Value::Object(crate::client::user_access::json_object(body.body.json())?);
    let draft = EventDraft::message(body.event_type.to_string().as_str(), content);
    let txn = (format!("send/{}", body.event_type), &*body.txn_id);
    let event_id = super::send_as(&state, &caller, &body.room_id, txn, draft).await?;
    Ok(RumaResponse(endpoint::Response::new(event_id)))
}
