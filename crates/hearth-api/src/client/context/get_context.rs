//! `GET /_matrix/client/v3/rooms/{roomId}/context/{eventId}` — events before and after an
//! event, and the state at the last one, with history visibility, the filter and (optionally)
//! lazy-loaded members applied as `/messages` applies them.
//! <https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3roomsroomidcontexteventid>

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use hearth_rooms::Pdu;
use hearth_sync::PaginationToken;
use ruma::api::client::context::get_context::v3 as endpoint;
use ruma::api::client::filter::LazyLoadOptions;
use ruma::events::StateEventType;

use crate::client::history::{
    history_reader, not_found, not_member, render, render_plain, visible_pdus,
};
use crate::client::message::get_message_events::passes;
use crate::extract::Ruma;
use crate::ruma_glue::{RumaResponse, route as route_endpoint};
use crate::{ApiError, ApiState};

/// The most context events one answer carries, whatever the client asks.
const MAX_LIMIT: i64 = 1000;

pub(crate) fn route(router: Router<ApiState>) -> Router<ApiState> {
    route_endpoint::<endpoint::Request, _, _>(router, handler)
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
    let store = state.rooms.store();
    let target = store
        .event(&body.event_id)
        .await?
        .filter(|e| e.room_id == *room)
        .ok_or_else(not_found)?;
    let event = visible_pdus(&state, &reader, std::slice::from_ref(&target))
        .await?
        .pop()
        .ok_or_else(not_found)?;

    // Half the limit before the event, the rest after it (as Synapse splits it).
    let limit = i64::try_from(u64::from(body.limit))
        .unwrap_or(MAX_LIMIT)
        .clamp(0, MAX_LIMIT);
    let (n_before, n_after) = (limit / 2, limit - limit / 2);
    let position = target.stream_ordering;
    let before = if n_before > 0 {
        store
            .room_events_backwards(room, 0, position - 1, n_before)
            .await?
    } else {
        Vec::new()
    };
    let after = if n_after > 0 {
        store
            .room_events_forwards(
                room,
                position + 1,
                reader.horizon.saturating_add(1),
                n_after,
            )
            .await?
    } else {
        Vec::new()
    };
    // Tokens from what was read, so that paginating on skips nothing the filter hid.
    let start = before.last().map_or(position, |e| e.stream_ordering);
    let end = after.last().map_or(position, |e| e.stream_ordering) + 1;

    let filter = &body.filter;
    let keep = |pdus: Vec<Arc<Pdu>>| -> Vec<Arc<Pdu>> {
        pdus.into_iter().filter(|p| passes(filter, p)).collect()
    };
    let events_before = keep(visible_pdus(&state, &reader, &before).await?);
    let events_after = keep(visible_pdus(&state, &reader, &after).await?);

    // The state at the last event returned.
    let last = events_after.last().unwrap_or(&event);
    let at = state.rooms.state_after(last.event_id()).await?;
    let lazy = matches!(filter.lazy_load_options, LazyLoadOptions::Enabled { .. });
    let senders: BTreeSet<_> = events_before
        .iter()
        .chain(std::iter::once(&event))
        .chain(&events_after)
        .map(|p| p.sender().to_string())
        .collect();
    let state_ids: Vec<_> = at
        .iter()
        .filter(|((kind, key), _)| {
            !lazy || *kind != StateEventType::RoomMember || senders.contains(key)
        })
        .map(|(_, id)| id.clone())
        .collect();
    // State is history too: a member reads the room's state, but someone invited, knocking or
    // gone sees only the state events their history visibility shows them (an invitee to a
    // `joined` room sees their own invite, not the member list or the power levels).
    let state_events: Vec<_> = if reader.joined {
        let loaded = state.rooms.load_pdus(&state_ids).await?;
        state_ids
            .iter()
            .filter_map(|id| loaded.get(id).cloned())
            .collect()
    } else {
        let rows = store.events(&state_ids).await?;
        visible_pdus(&state, &reader, &rows).await?
    };
    let state_events: Vec<_> = state_events
        .into_iter()
        .filter(|p| passes(filter, p))
        .collect();

    let mut response = endpoint::Response::new();
    response.start = Some(PaginationToken(start).to_string());
    response.end = Some(PaginationToken(end).to_string());
    response.event = render(&state, &reader, std::slice::from_ref(&event))
        .await?
        .pop();
    response.events_before = render(&state, &reader, &events_before).await?;
    response.events_after = render(&state, &reader, &events_after).await?;
    response.state = render_plain(&state, &state_events).await?;
    Ok(RumaResponse(response))
}
