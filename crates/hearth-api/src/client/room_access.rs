//! Who may read or act in a room, as the client endpoints need it.

use axum::http::StatusCode;
use hearth_rooms::{Rooms, StateIds};
use ruma::api::error::ErrorKind;
use ruma::events::StateEventType;
use ruma::{RoomId, UserId};

use crate::ApiError;

fn not_member() -> ApiError {
    // The same answer for unknown rooms, so that room ids can't be probed.
    ApiError::new(
        StatusCode::FORBIDDEN,
        ErrorKind::Forbidden,
        "you are not a member of this room",
    )
}

/// The content of the state event at `(kind, key)` of `state`; `Null` when there is none (or
/// it is not JSON).
pub(crate) async fn state_content(
    rooms: &Rooms,
    state: &StateIds,
    kind: StateEventType,
    key: &str,
) -> Result<serde_json::Value, ApiError> {
    Ok(match state.get(&(kind, key.to_owned())) {
        Some(id) => rooms
            .pdu(id)
            .await?
            .and_then(|p| serde_json::from_str(p.content().get()).ok())
            .unwrap_or(serde_json::Value::Null),
        None => serde_json::Value::Null,
    })
}

/// Whether `state` makes the room `world_readable` (an empty state, an unknown room, does not).
pub(crate) async fn world_readable(rooms: &Rooms, state: &StateIds) -> Result<bool, ApiError> {
    let visibility = state_content(rooms, state, StateEventType::RoomHistoryVisibility, "").await?;
    Ok(visibility["history_visibility"] == "world_readable")
}

/// The user's membership in the room's current state, and that state.
pub(crate) async fn membership(
    rooms: &Rooms,
    room: &RoomId,
    user: &UserId,
) -> Result<(Option<String>, StateIds), ApiError> {
    let state = rooms.current_state(room).await?;
    let Some(id) = state.get(&(StateEventType::RoomMember, user.to_string())) else {
        return Ok((None, state));
    };
    let pdu = rooms.pdu(id).await?.ok_or_else(not_member)?;
    Ok((pdu.membership(), state))
}

/// The room state a user may read (`/state`, `/state/{type}/{key}`, `/members`): the current
/// state for a member, and for anyone when the room is `world_readable`; the state as it was
/// when they left for someone who left or was banned, as the spec says of `/state`; nothing
/// for anyone else (invited and knocking users have the stripped state of their sync).
pub(crate) async fn readable_state(
    rooms: &Rooms,
    room: &RoomId,
    user: &UserId,
) -> Result<StateIds, ApiError> {
    let (membership, current) = membership(rooms, room, user).await?;
    if membership.as_deref() == Some("join") || world_readable(rooms, &current).await? {
        return Ok(current);
    }
    match (
        membership.as_deref(),
        current.get(&(StateEventType::RoomMember, user.to_string())),
    ) {
        (Some("leave" | "ban"), Some(departure)) => Ok(rooms.state_after(departure).await?),
        _ => Err(not_member()),
    }
}

/// The user must be joined to the room. Answered from the user's memberships (which the store
/// keeps in memory and the event writer updates with the room's state), not the room's state.
pub(crate) async fn require_joined(
    rooms: &Rooms,
    room: &RoomId,
    user: &UserId,
) -> Result<(), ApiError> {
    let memberships = rooms.store().memberships_of(user).await?;
    if memberships
        .iter()
        .any(|m| m.room_id == room && m.membership == "join")
    {
        Ok(())
    } else {
        Err(not_member())
    }
}

/// The user must be joined and have the power to send state events of `kind`.
pub(crate) async fn require_state_power(
    state: &crate::ApiState,
    room: &RoomId,
    user: &UserId,
    kind: &str,
) -> Result<(), ApiError> {
    require_joined(&state.rooms, room, user).await?;
    let power = state.rooms.power(room).await?;
    if power.user(user) < power.state_event(kind) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorKind::Forbidden,
            format!("you need the power level to send {kind} in this room"),
        ));
    }
    Ok(())
}
