//! `GET /_matrix/client/v3/rooms/{roomId}/messages` — paginate a room's history, either way,
//! with history visibility applied and (optionally) lazy-loaded members.
//! <https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3roomsroomidmessages>

use std::collections::BTreeSet;

use axum::Router;
use axum::extract::State;
use hearth_rooms::member_key;
use hearth_sync::PaginationToken;
use ruma::api::Direction;
use ruma::api::client::filter::{LazyLoadOptions, RoomEventFilter};
use ruma::api::client::message::get_message_events::v3 as endpoint;
use ruma::serde::Raw;

use crate::client::history::{history_reader, not_member, token, visible_pdus};
use crate::extract::Ruma;
use crate::ruma_glue::{RumaResponse, route as route_endpoint};
use crate::{ApiError, ApiState};
use hearth_sync::type_matches;

/// The most events one page returns, whatever the client asks.
const MAX_LIMIT: i64 = 1000;

pub(crate) fn route(router: Router<ApiState>) -> Router<ApiState> {
    route_endpoint::<endpoint::Request, _, _>(router, handler)
}

pub(crate) fn passes(filter: &RoomEventFilter, pdu: &hearth_rooms::Pdu) -> bool {
    let kind = pdu.kind().to_string();
    let matches = |pattern: &String| type_matches(pattern, &kind);
    filter
        .types
        .as_ref()
        .is_none_or(|types| types.iter().any(matches))
        && !filter.not_types.iter().any(matches)
        && filter
            .senders
            .as_ref()
            .is_none_or(|s| s.iter().any(|u| u == pdu.sender()))
        && !filter.not_senders.iter().any(|u| u == pdu.sender())
}

async fn handler(
    State(state): State<ApiState>,
    request: Ruma<endpoint::Request>,
) -> Result<RumaResponse<endpoint::Response>, ApiError> {
    let user = request.caller()?.user_id.clone();
    let body = request.body;
    let room = &body.room_id;
    let reader = history_reader(&state, room, &user)
        .await?
        .ok_or_else(not_member)?;
    let horizon = reader.horizon;
    let store = state.rooms.store();
    let limit = i64::try_from(u64::from(body.limit))
        .unwrap_or(MAX_LIMIT)
        .clamp(1, MAX_LIMIT);
    let to = body.to.as_deref().map(token).transpose()?;
    let (stored, start, end) = match body.dir {
        Direction::Backward => {
            let from = match &body.from {
                Some(from) => token(from)?,
                None => PaginationToken(horizon + 1),
            };
            let floor = to.map_or(0, |t| t.0 - 1).max(0);
            let upto = (from.0 - 1).min(horizon);
            let events = store
                .room_events_backwards(room, floor, upto, limit)
                .await?;
            let end = (events.len() as i64 == limit)
                .then(|| events.last().map(|e| PaginationToken(e.stream_ordering)))
                .flatten();
            (events, from, end)
        }
        Direction::Forward => {
            let from = match &body.from {
                Some(from) => token(from)?,
                None => PaginationToken(0),
            };
            let before = to.map_or(horizon + 1, |t| t.0).min(horizon + 1);
            let events = store
                .room_events_forwards(room, from.0, before, limit)
                .await?;
            let end = events
                .last()
                .map(|e| PaginationToken(e.stream_ordering + 1));
            (events, from, end)
        }
    };

    let chunk: Vec<_> = visible_pdus(&state, &reader, &stored)
        .await?
        .into_iter()
        .filter(|p| passes(&body.filter, p))
        .collect();

    // Lazy-loaded members: the member events of this page's senders, as of the page.
    let mut member_state = Vec::new();
    if matches!(
        body.filter.lazy_load_options,
        LazyLoadOptions::Enabled { .. }
    ) && let Some(first) = chunk.first()
    {
        let senders: BTreeSet<_> = chunk.iter().map(|p| p.sender().to_owned()).collect();
        let at = state.rooms.state_after(first.event_id()).await?;
        let member_ids: Vec<_> = senders
            .iter()
            .filter_map(|s| at.get(&member_key(s)).cloned())
            .collect();
        let members = state.rooms.load_pdus(&member_ids).await?;
        let members: Vec<_> = member_ids
            .iter()
            .filter_map(|id| members.get(id).cloned())
            .collect();
        for event in state.rooms.client_events(&members).await? {
            member_state.push(Raw::from_json(
                serde_json::value::to_raw_value(&event).map_err(ApiError::internal)?,
            ));
        }
    }

    let mut response = endpoint::Response::new();
    response.start = start.to_string();
    response.end = end.map(|t| t.to_string());
    let reader = hearth_rooms::Reader {
        user: &user,
        upto: horizon,
    };
    for event in state.rooms.client_events_for(reader, &chunk).await? {
        response.chunk.push(Raw::from_json(
            serde_json::value::to_raw_value(&event).map_err(ApiError::internal)?,
        ));
    }
    response.state = member_state;
    Ok(RumaResponse(response))
}
