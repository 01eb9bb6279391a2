//! `GET /_matrix/client/v3/rooms/{roomId}/members` — the room's member events, filtered by
//! membership, now or at a pagination token.
//! <https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3roomsroomidmembers>

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use ruma::api::client::membership::get_member_events::v3 as endpoint;
use ruma::api::error::ErrorKind;
use ruma::events::StateEventType;
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
    let body = &request.body;
    let current = readable_state(&state.rooms, &body.room_id, user).await?;
    // Someone who left reads no further than their leave, whatever `at` says.
    let horizon = crate::client::history::history_reader(&state, &body.room_id, user)
        .await?
        .map(|reader| reader.horizon);
    let members = match &body.at {
        None => current,
        Some(at) => {
            let position = at.parse::<hearth_sync::PaginationToken>().map_err(|()| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    ErrorKind::InvalidParam,
                    "bad `at` token",
                )
            })?;
            let store = state.rooms.store();
            let upto = horizon.map_or(position.0 - 1, |h| (position.0 - 1).min(h));
            match store
                .room_events_backwards(&body.room_id, 0, upto, 1)
                .await?
                .first()
            {
                Some(last) => state.rooms.state_after(&last.event_id).await?,
                None => Default::default(),
            }
        }
    };
    let ids: Vec<_> = members
        .iter()
        .filter(|((kind, _), _)| *kind == StateEventType::RoomMember)
        .map(|(_, id)| id.clone())
        .collect();
    let pdus = state.rooms.load_pdus(&ids).await?;
    let mut chunk = Vec::new();
    for id in &ids {
        let Some(pdu) = pdus.get(id) else { continue };
        let membership = pdu.membership().unwrap_or_default();
        if body
            .membership
            .as_ref()
            .is_some_and(|m| m.as_str() != membership)
            || body
                .not_membership
                .as_ref()
                .is_some_and(|m| m.as_str() == membership)
        {
            continue;
        }
        let json =
            serde_json::value::to_raw_value(&pdu.to_client_event()).map_err(ApiError::internal)?;
        chunk.push(Raw::from_json(json));
    }
    Ok(RumaResponse(endpoint::Response::new(chunk)))
}
