//! `PUT /_matrix/client/v3/rooms/{roomId}/redact/{eventId}/{txnId}` — redact an event.
//! <https://spec.matrix.org/v1.16/client-server-api/#put_matrixclientv3roomsroomidredacteventidtxnid>
//!
//! The old `POST /rooms/{roomId}/redact/{eventId}` without a transaction id is in none of the
//! versions Hearth advertises (v1.1 to v1.12 list only this `PUT`), so it answers 404
//! `M_UNRECOGNIZED` like any unknown endpoint, which is right for them.

use axum::Router;
use axum::extract::State;
use hearth_rooms::EventDraft;
use ruma::api::client::redact::redact_event::v3 as endpoint;

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
    // The pipeline checks that the target is in this room and that the sender may redact it.
    let draft = EventDraft::redaction(body.event_id.clone(), body.reason.as_deref());
    let endpoint = format!("redact/{}", body.event_id);
    let txn = (endpoint, &*body.txn_id);
    let event_id =
        crate::client::message::send_as(&state, &caller, &body.room_id, txn, draft).await?;
    Ok(RumaResponse(endpoint::Response::new(event_id)))
}
