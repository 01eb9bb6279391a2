//! `GET /_matrix/client/v3/rooms/{roomId}/initialSync` — a room's state, latest messages and
//! the reader's membership, for a member, someone who left (as of their leave) or anyone when
//! the room is `world_readable`.
//! <https://spec.matrix.org/v1.12/client-server-api/#get_matrixclientv3roomsroomidinitialsync>

use axum::Router;
use axum::extract::State;
use hearth_sync::PaginationToken;
use ruma::api::client::peeking::get_current_state::v3::{self as endpoint, PaginationChunk};
use ruma::api::client::room::Visibility;
use ruma::events::room::member::MembershipState;

use crate::client::history::visible_pdus;
use crate::client::history::{history_reader, not_member, raw, render, render_plain};
use crate::client::room_access::readable_state;
use crate::extract::Ruma;
use crate::ruma_glue::{RumaResponse, route as route_endpoint};
use crate::{ApiError, ApiState};

/// The latest messages sent.
const MESSAGES: i64 = 20;

pub(crate) fn route(router: Router<ApiState>) -> Router<ApiState> {
    route_endpoint::<endpoint::Request, _, _>(router, handler)
}

async fn handler(
    State(state): State<ApiState>,
    request: Ruma<endpoint::Request>,
) -> Result<RumaResponse<endpoint::Response>, ApiError> {
    let user = request.caller()?.user_id.clone();
    let room = request.body.room_id;
    let reader = history_reader(&state, &room, &user)
        .await?
        .ok_or_else(not_member)?;
    let store = state.rooms.store();
    let current = readable_state(&state.rooms, &room, &user).await?;

    let mut newest_first = store
        .room_events_backwards(&room, 0, reader.horizon, MESSAGES)
        .await?;
    let earlier = newest_first.len() as i64 == MESSAGES;
    newest_first.reverse();
    let pdus = visible_pdus(&state, &reader, &newest_first).await?;
    let mut messages = PaginationChunk::new(
        render(&state, &reader, &pdus).await?,
        PaginationToken(reader.horizon + 1).to_string(),
    );
    messages.start = newest_first
        .first()
        .filter(|_| earlier)
        .map(|e| PaginationToken(e.stream_ordering).to_string());

    let ids: Vec<_> = current.values().cloned().collect();
    let loaded = state.rooms.load_pdus(&ids).await?;
    let mut state_pdus: Vec<_> = ids
        .iter()
        .filter_map(|id| loaded.get(id).cloned())
        .collect();
    state_pdus.sort_by_key(|p| (p.kind().to_string(), p.state_key().map(str::to_owned)));

    let mut account_data = Vec::new();
    for row in store.account_data_since(&user, 0).await? {
        if row.room_id.as_deref() == Some(&*room) {
            let content: serde_json::Value = serde_json::from_str(&row.content).unwrap_or_default();
            account_data.push(raw(
                &serde_json::json!({ "type": row.data_type, "content": content }),
            )?);
        }
    }
    let membership = store
        .memberships_of(&user)
        .await?
        .iter()
        .find(|m| m.room_id == room)
        .map(|m| MembershipState::from(m.membership.as_str()));
    let visibility = if store.is_published(&room).await? {
        Visibility::Public
    } else {
        Visibility::Private
    };

    let mut response = endpoint::Response::new(room);
    response.messages = Some(messages);
    response.state = render_plain(&state, &state_pdus).await?;
    response.account_data = account_data;
    response.membership = membership;
    response.visibility = Some(visibility);
    Ok(RumaResponse(response))
}
