//! `GET /_matrix/client/v3/rooms/{roomId}/event/{eventId}` — one event.
//! <https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3roomsroomideventeventid>

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use ruma::api::client::room::get_room_event::v3 as endpoint;
use ruma::serde::Raw;

use crate::client::room_access::require_joined;
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
    require_joined(&state.rooms, &body.room_id, user).await?;
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "M_NOT_FOUND", "event not found");
    let pdu = state
        .rooms
        .pdu(&body.event_id)
        .await?
        .ok_or_else(not_found)?;
    if pdu.room() != body.room_id {
        return Err(not_found());
    }
    // Events the user may not see (history visibility) are as good as absent.
    let stored = state
        .rooms
        .store()
        .event(&body.event_id)
        .await?
        .ok_or_else(not_found)?;
    let visible = state
        .rooms
        .visible_to(user, true, std::slice::from_ref(&stored))
        .await?;
    if !visible.first().copied().unwrap_or(false) && !hearth_rooms::is_own_membership(&pdu, user) {
        return Err(not_found());
    }
    let event = state
        .rooms
        .client_events_for(
            hearth_rooms::Reader {
                user,
                upto: state.rooms.store().current_stream(),
            },
            &[pdu],
        )
        .await?
        .pop()
        .ok_or_else(not_found)?;
    let raw = Raw::from_json(serde_json::value::to_raw_value(&event).map_err(ApiError::internal)?);
    Ok(RumaResponse(endpoint::Response::new(raw)))
}
