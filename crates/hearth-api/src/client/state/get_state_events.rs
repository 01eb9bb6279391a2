//! `GET /_matrix/client/v3/rooms/{roomId}/state` — the room's current state.
//! <https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3roomsroomidstate>

use axum::Router;
use axum::extract::State;
use ruma::api::client::state::get_state_events::v3 as endpoint;
use ruma::serde::Raw;

use crate::client::room_access::readable_state;
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
    let current = readable_state(&state.rooms, &request.body.room_id, user).await?;
    let ids: Vec<_> = current.values().cloned().collect();
    let pdus = state.rooms.load_pdus(&ids).await?;
    let pdus: Vec<_> = ids.iter().filter_map(|id| pdus.get(id).cloned()).collect();
    let mut events = Vec::with_capacity(pdus.len());
    for event in state.rooms.client_events(&pdus).await? {
        events.push(Raw::from_json(
            serde_json::value::to_raw_value(&event).map_err(ApiError::internal)?,
        ));
    }
    Ok(RumaResponse(endpoint::Response::new(events)))
}
