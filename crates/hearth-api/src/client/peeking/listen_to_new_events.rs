//! `GET /_matrix/client/v3/events?room_id=` — a previewed room's new events: those at or after
//! `from` (a token from `initialSync` or a previous call; now if absent), waiting up to
//! `timeout` for the first. For anyone who may read the room (see `initialSync`).
//! <https://spec.matrix.org/v1.12/client-server-api/#peeking_get_matrixclientv3events>
//!
//! The deprecated event stream (`/events` without `room_id`) is not served: `/sync` replaced
//! it, and the request is refused as missing its `room_id`.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use hearth_sync::PaginationToken;
use ruma::api::client::peeking::listen_to_new_events::v3 as endpoint;
use tokio::time::Instant;

use crate::client::history::{history_reader, not_member, render, token, visible_pdus};
use crate::extract::Ruma;
use crate::ruma_glue::{RumaResponse, route as route_endpoint};
use crate::{ApiError, ApiState};

/// The spec's default wait.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest a client may make us hold the request open.
const MAX_TIMEOUT: Duration = Duration::from_secs(120);
/// The most events one answer carries.
const LIMIT: i64 = 100;

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
    let store = state.rooms.store();
    let from = match &body.from {
        Some(from) => token(from)?,
        None => PaginationToken(store.current_stream() + 1),
    };
    let timeout = body.timeout.unwrap_or(DEFAULT_TIMEOUT).min(MAX_TIMEOUT);
    let deadline = Instant::now() + timeout;
    // Registered before reading, so that an event between the read and the wait wakes us.
    let mut waiter = store.notifier().waiter();
    waiter.watch_rooms([&**room]);
    // Past the events read so far (some may be invisible to the reader).
    let mut cursor = from;
    loop {
        let reader = history_reader(&state, room, &user)
            .await?
            .ok_or_else(not_member)?;
        let stored = store
            .room_events_forwards(room, cursor.0, reader.horizon + 1, LIMIT)
            .await?;
        if let Some(last) = stored.last() {
            cursor = PaginationToken(last.stream_ordering + 1);
        }
        let pdus = visible_pdus(&state, &reader, &stored).await?;
        if !pdus.is_empty() || Instant::now() >= deadline {
            let mut response = endpoint::Response::new();
            response.chunk = render(&state, &reader, &pdus).await?;
            response.start = Some(from.to_string());
            response.end = Some(cursor.to_string());
            return Ok(RumaResponse(response));
        }
        if !stored.is_empty() {
            // Only events the reader may not see: there may be more after them.
            continue;
        }
        // News, or the deadline (answered by the next pass).
        let _ = tokio::time::timeout_at(deadline, waiter.woken()).await;
    }
}
