//! `PUT /_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}` — send a message event.
//! <https://spec.matrix.org/v1.16/client-server-api/#put_matrixclientv3roomsroomidsendeventtypetxnid>

use axum::Router;
use axum::extract::State;
use hearth_rooms::{Append, EventDraft};
use hearth_store::TxnKey;
use ruma::api::client::message::send_message_event::v3 as endpoint;

use crate::client::room_access::joined_state;
use crate::extract::Ruma;
use crate::rate_limit::RateKey;
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
    state
        .rate_limits
        .send
        .check(RateKey::user(&caller.user_id))?;
    let body = request.body;
    joined_state(&state.rooms, &body.room_id, &caller.user_id).await?;
    let content: serde_json::Value =
        serde_json::from_str(body.body.json().get()).map_err(ApiError::internal)?;
    let draft = EventDraft::message(body.event_type.to_string().as_str(), content);
    let txn = TxnKey {
        room_id: body.room_id.clone(),
        user_id: caller.user_id.clone(),
        device_id: caller.device_id.clone(),
        txn_id: body.txn_id.clone(),
    };
    let append = Append {
        sender: caller.user_id,
        draft,
        txn: Some(txn),
    };
    let appended = state.rooms.append(&body.room_id, append).await?;
    Ok(RumaResponse(endpoint::Response::new(appended.event_id)))
}
