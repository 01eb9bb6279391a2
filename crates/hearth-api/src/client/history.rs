//! Reading a room's history as `/messages` does — membership decides the horizon, history
//! visibility each event — for the endpoints that read around it (`/context`, `/relations`,
//! `/threads`), and rendering what is read with redactions and bundled aggregations applied.

use std::sync::Arc;

use axum::http::StatusCode;
use hearth_rooms::{Pdu, Reader, is_own_membership};
use hearth_store::StoredEvent;
use hearth_sync::PaginationToken;
use ruma::api::error::ErrorKind;
use ruma::serde::Raw;
use ruma::{OwnedUserId, RoomId, UserId};

use crate::{ApiError, ApiState};

/// A user reading a room's history.
pub(crate) struct HistoryReader {
    pub user: OwnedUserId,
    /// Joined now (what the `shared` history visibility consults).
    pub joined: bool,
    /// The last stream position they may see: now, or their leave.
    pub horizon: i64,
}

impl HistoryReader {
    /// Who bundled aggregations are computed for.
    pub fn reader(&self) -> Reader<'_> {
        Reader {
            user: &self.user,
            upto: self.horizon,
        }
    }
}

pub(crate) fn not_member() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        ErrorKind::Forbidden,
        "you are not a member of this room",
    )
}

pub(crate) fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorKind::NotFound,
        "event not found",
    )
}

/// A pagination token as `/messages` writes them (sync tokens are accepted too).
pub(crate) fn token(value: &str) -> Result<PaginationToken, ApiError> {
    value.parse().map_err(|()| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorKind::InvalidParam,
            "unknown pagination token",
        )
    })
}

/// The user as a reader of the room; `None` if they never had a membership in it, or forgot
/// the room (spec: a forgotten room's history can no longer be retrieved), unless the room is
/// `world_readable` now: then anyone may read it up to now, each event still judged by the
/// history visibility it was sent under.
pub(crate) async fn history_reader(
    state: &ApiState,
    room: &RoomId,
    user: &UserId,
) -> Result<Option<HistoryReader>, ApiError> {
    let store = state.rooms.store();
    let now = store.current_stream();
    // The membership index (in memory), which the event writer keeps with the room's state.
    let memberships = store.memberships_of(user).await?;
    let reader = memberships
        .iter()
        .find(|m| m.room_id == room)
        .map(|current| HistoryReader::of(current, now));
    if reader.as_ref().is_some_and(|r| r.horizon == now) {
        return Ok(reader);
    }
    let current = state.rooms.current_state(room).await?;
    if crate::client::room_access::world_readable(&state.rooms, &current).await? {
        return Ok(Some(HistoryReader {
            user: user.to_owned(),
            joined: false,
            horizon: now,
        }));
    }
    Ok(reader)
}

impl HistoryReader {
    /// The reader a membership makes of its user, the stream being at `now`: a user who left
    /// sees nothing after their leave.
    pub(crate) fn of(membership: &hearth_store::Membership, now: i64) -> Self {
        let horizon = match membership.membership.as_str() {
            "join" | "invite" => now,
            _ => membership.stream_ordering,
        };
        Self {
            user: membership.user_id.clone(),
            joined: membership.membership == "join",
            horizon,
        }
    }
}

/// The events of `stored` the reader may see (history visibility; their own membership events
/// always), parsed, in the same order.
pub(crate) async fn visible_pdus(
    state: &ApiState,
    reader: &HistoryReader,
    stored: &[StoredEvent],
) -> Result<Vec<Arc<Pdu>>, ApiError> {
    let owned: Vec<StoredEvent> = stored
        .iter()
        .filter(|e| e.stream_ordering <= reader.horizon)
        .cloned()
        .collect();
    let visible = state
        .rooms
        .visible_to(&reader.user, reader.joined, &owned)
        .await?;
    let ids: Vec<_> = owned.iter().map(|e| e.event_id.clone()).collect();
    let pdus = state.rooms.load_pdus(&ids).await?;
    let ignored = hearth_sync::ignored::ignored_users(state.rooms.store(), &reader.user).await?;
    Ok(owned
        .iter()
        .zip(visible)
        .filter_map(|(e, visible)| {
            pdus.get(&e.event_id)
                .filter(|p| visible || is_own_membership(p, &reader.user))
                .filter(|p| !hearth_sync::ignored::hides(&ignored, p))
                .cloned()
        })
        .collect())
}

/// Room events for the client: redactions applied, aggregations bundled.
pub(crate) async fn render<T>(
    state: &ApiState,
    reader: &HistoryReader,
    pdus: &[Arc<Pdu>],
) -> Result<Vec<Raw<T>>, ApiError> {
    state
        .rooms
        .client_events_for(reader.reader(), pdus)
        .await?
        .iter()
        .map(raw)
        .collect()
}

/// Events (state, say) rendered without aggregations.
pub(crate) async fn render_plain<T>(
    state: &ApiState,
    pdus: &[Arc<Pdu>],
) -> Result<Vec<Raw<T>>, ApiError> {
    state
        .rooms
        .client_events(pdus)
        .await?
        .iter()
        .map(raw)
        .collect()
}

pub(crate) fn raw<T>(event: &serde_json::Value) -> Result<Raw<T>, ApiError> {
    Ok(Raw::from_json(
        serde_json::value::to_raw_value(event).map_err(ApiError::internal)?,
    ))
}
