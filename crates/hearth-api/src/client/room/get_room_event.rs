//! `GET /_matrix/client/v3/rooms/{roomId}/event/{eventId}` — one event.
//! <https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3roomsroomideventeventid>

use axum::Router;
use axum::extract::State;
use ruma::api::client::room::get_room_event::v3 as endpoint;
use ruma::serde::Raw;

use crate::client::history::{history_reader, not_found, not_member, visible_pdus};
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
    let user = &request.caller()?.user_id;
    let body = &request.body;
    // Members, and those who left (up to their leave), read what history visibility lets
    // them see.
    let reader = history_reader(&state, &body.room_id, user)
        .await?
        .ok_or_else(not_member)?;
    let stored = state
        .rooms
        .store()
        .event(&body.event_id)
        .await?
        .filter(|e| e.room_id == body.room_id)
        .ok_or_else(not_found)?;
    let pdu = visible_pdus(&state, &reader, std::slice::from_ref(&stored))
        .await?
        .pop()
        .ok_or_else(not_found)?;
    let event = state
        .rooms
        .client_events_for(
            hearth_rooms::Reader {
                user,
                upto: reader.horizon,
            },
            &[pdu],
        )
        .await?
        .pop()
        .ok_or_else(not_found)?;
    let raw = Raw::from_json(serde_json::value::to_raw_value(&event).map_err(ApiError::internal)?);
    Ok(RumaResponse(endpoint::Response::new(raw)))
}
