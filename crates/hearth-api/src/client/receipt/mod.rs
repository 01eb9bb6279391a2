//! Read receipts and the fully-read marker.

pub(crate) mod create_receipt;

use axum::http::StatusCode;
use ruma::api::error::ErrorKind;
use ruma::{EventId, RoomId, UserId};

use crate::client::room_access::require_joined;
use crate::{ApiError, ApiState};

/// A receipt may only point at an event of the room, sent by a member who is in it: the event.
pub(crate) async fn check_target(
    state: &ApiState,
    room: &RoomId,
    user: &UserId,
    event: &EventId,
) -> Result<hearth_store::StoredEvent, ApiError> {
    require_joined(&state.rooms, room, user).await?;
    match state.rooms.store().event(event).await? {
        Some(stored) if stored.room_id == room => Ok(stored),
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorKind::NotFound,
            "no such event in this room",
        )),
    }
}

/// Store a read receipt of `kind` (`m.read` or `m.read.private`).
pub(crate) async fn store_receipt(
    state: &ApiState,
    room: &RoomId,
    user: &UserId,
    kind: &str,
    thread: Option<&str>,
    event: &EventId,
) -> Result<(), ApiError> {
    let now = i64::from(ruma::MilliSecondsSinceUnixEpoch::now().get());
    state
        .rooms
        .store()
        .set_receipt(room, user, kind, thread, event, now)
        .await?;
    // Partners in the room see public receipts (private ones stay here).
    if kind == "m.read" {
        state
            .federation
            .send_read_receipt(room, user, event, thread)
            .await;
    }
    Ok(())
}

/// Move the user's `m.fully_read` marker (room account data).
pub(crate) async fn store_fully_read(
    state: &ApiState,
    room: &RoomId,
    user: &UserId,
    event: &EventId,
) -> Result<(), ApiError> {
    let content = serde_json::json!({ "event_id": event }).to_string();
    state
        .rooms
        .store()
        .set_account_data(user, Some(room), "m.fully_read", &content)
        .await?;
    Ok(())
}
