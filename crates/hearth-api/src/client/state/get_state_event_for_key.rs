//! `GET /_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}` — one state event's
//! content (or the whole event with `format=event`).
//! <https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3roomsroomidstateeventtypestatekey>

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use ruma::api::client::state::get_state_event_for_key::v3::{self as endpoint, StateEventFormat};
use ruma::api::error::ErrorKind;

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
    let body = &request.body;
    let current = readable_state(&state.rooms, &body.room_id, user).await?;
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorKind::NotFound,
            "no such state event",
        )
    };
    let id = current
        .get(&(body.event_type.clone(), body.state_key.clone()))
        .ok_or_else(not_found)?;
    let pdu = state.rooms.pdu(id).await?.ok_or_else(not_found)?;
    let event = state
        .rooms
        .client_events(&[pdu])
        .await?
        .pop()
        .ok_or_else(not_found)?;
    let value = match body.format {
        StateEventFormat::Event => event,
        _ => event["content"].clone(),
    };
    let raw = serde_json::value::to_raw_value(&value).map_err(ApiError::internal)?;
    Ok(RumaResponse(endpoint::Response::new(raw)))
}
