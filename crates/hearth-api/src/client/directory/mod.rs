//! The public room directory.

pub(crate) mod get_public_rooms;
pub(crate) mod get_public_rooms_filtered;
pub(crate) mod get_room_visibility;
pub(crate) mod set_room_visibility;

use axum::http::StatusCode;
use ruma::api::error::ErrorKind;
use ruma::directory::PublicRoomsChunk;
use ruma::events::StateEventType;
use ruma::{RoomId, UInt};
use serde_json::{Value, json};

use crate::client::room_access::state_content;
use crate::{ApiError, ApiState};

/// A page of the directory: rooms from `since` (an offset, `p{n}`), at most `limit`, matching
/// `search` in name, topic or alias.
pub(crate) struct Page {
    pub chunk: Vec<PublicRoomsChunk>,
    pub next_batch: Option<String>,
    pub prev_batch: Option<String>,
    pub total: UInt,
}

fn offset(since: Option<&str>) -> Result<usize, ApiError> {
    match since {
        None => Ok(0),
        Some(token) => token
            .strip_prefix('p')
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    ErrorKind::InvalidParam,
                    "unknown since token",
                )
            }),
    }
}

pub(crate) async fn page(
    state: &ApiState,
    since: Option<&str>,
    limit: Option<UInt>,
    search: Option<&str>,
) -> Result<Page, ApiError> {
    let start = offset(since)?;
    let limit = limit
        .map_or(100, |l| usize::try_from(u64::from(l)).unwrap_or(usize::MAX))
        .clamp(1, 500);
    let search = search.map(str::to_lowercase).filter(|s| !s.is_empty());
    let mut rooms = Vec::new();
    for room in state.rooms.store().published_rooms().await? {
        let chunk = chunk(state, &room).await?;
        let matches = search.as_ref().is_none_or(|term| {
            ["name", "topic", "canonical_alias"].iter().any(|field| {
                chunk[*field]
                    .as_str()
                    .is_some_and(|v| v.to_lowercase().contains(term))
            })
        });
        if matches {
            rooms.push(chunk);
        }
    }
    // Biggest rooms first, as directory users expect; ties by id for stable pages.
    rooms.sort_by(|a, b| {
        b["num_joined_members"]
            .as_u64()
            .cmp(&a["num_joined_members"].as_u64())
            .then_with(|| a["room_id"].as_str().cmp(&b["room_id"].as_str()))
    });
    let total = UInt::try_from(rooms.len()).unwrap_or(UInt::MAX);
    let end = (start + limit).min(rooms.len());
    let chunk = rooms
        .get(start..end)
        .unwrap_or_default()
        .iter()
        .map(|c| serde_json::from_value(c.clone()).map_err(ApiError::internal))
        .collect::<Result<_, _>>()?;
    Ok(Page {
        chunk,
        next_batch: (end < rooms.len()).then(|| format!("p{end}")),
        prev_batch: (start > 0).then(|| format!("p{}", start.saturating_sub(limit))),
        total,
    })
}

/// One room's directory entry (a room summary), from its current state.
pub(crate) async fn chunk(state: &ApiState, room: &RoomId) -> Result<Value, ApiError> {
    let current = state.rooms.current_state(room).await?;
    let content = async |kind: StateEventType| -> Result<Value, ApiError> {
        state_content(&state.rooms, &current, kind, "").await
    };
    let joined = state
        .rooms
        .store()
        .room_members(room, Some("join"))
        .await?
        .len();
    let create = content(StateEventType::RoomCreate).await?;
    let mut chunk = json!({
        "room_id": room,
        "num_joined_members": joined,
        "name": content(StateEventType::RoomName).await?["name"],
        "topic": content(StateEventType::RoomTopic).await?["topic"],
        "canonical_alias": content(StateEventType::RoomCanonicalAlias).await?["alias"],
        "avatar_url": content(StateEventType::RoomAvatar).await?["url"],
        "world_readable": content(StateEventType::RoomHistoryVisibility).await?["history_visibility"] == "world_readable",
        "guest_can_join": content(StateEventType::RoomGuestAccess).await?["guest_access"] == "can_join",
        "join_rule": content(StateEventType::RoomJoinRules).await?["join_rule"].as_str().unwrap_or("invite"),
        "room_type": create["type"],
    });
    // Absent fields are omitted, not null.
    if let Some(map) = chunk.as_object_mut() {
        map.retain(|_, v| !v.is_null());
    }
    Ok(chunk)
}
