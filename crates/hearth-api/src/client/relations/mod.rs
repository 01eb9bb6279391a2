//! The relations API: children of an event, optionally of one `rel_type` and event type,
//! paginated like `/messages` (`t{stream}` tokens) with history visibility applied.
//! <https://spec.matrix.org/v1.16/client-server-api/#relationships-api>

pub(crate) mod get_relating_events;
pub(crate) mod get_relating_events_with_rel_type;
pub(crate) mod get_relating_events_with_rel_type_and_event_type;

use hearth_store::ChildrenQuery;
use hearth_sync::PaginationToken;
use ruma::api::Direction;
use ruma::serde::Raw;
use ruma::{EventId, RoomId, UInt, UserId};

use crate::client::history::{history_reader, not_found, render, token, visible_pdus};
use crate::{ApiError, ApiState};

/// Children per page when the client names no limit, and the most it may ask for.
const DEFAULT_LIMIT: i64 = 20;
const MAX_LIMIT: i64 = 1000;

/// How deep `recurse=true` follows relations (the spec asks for at least 3).
const RECURSION_DEPTH: u32 = 3;

/// One relations request, whichever of the three endpoints it came through.
pub(crate) struct Request<'a> {
    pub room: &'a RoomId,
    pub parent: &'a EventId,
    pub rel_type: Option<String>,
    pub event_type: Option<String>,
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub limit: Option<UInt>,
    pub dir: Direction,
    pub recurse: bool,
}

/// One page of children.
pub(crate) struct Page<T> {
    pub chunk: Vec<Raw<T>>,
    pub next_batch: Option<String>,
    pub prev_batch: Option<String>,
    pub recursion_depth: Option<UInt>,
}

pub(crate) async fn children<T>(
    state: &ApiState,
    user: &UserId,
    request: Request<'_>,
) -> Result<Page<T>, ApiError> {
    // Unknown parents, and parents the user may not see, are all 404 (per the spec).
    let reader = history_reader(state, request.room, user)
        .await?
        .ok_or_else(not_found)?;
    let store = state.rooms.store();
    let parent = store
        .event(request.parent)
        .await?
        .filter(|e| e.room_id == request.room)
        .ok_or_else(not_found)?;
    if visible_pdus(state, &reader, std::slice::from_ref(&parent))
        .await?
        .is_empty()
    {
        return Err(not_found());
    }

    let limit = request
        .limit
        .map_or(DEFAULT_LIMIT, |l| {
            i64::try_from(u64::from(l)).unwrap_or(MAX_LIMIT)
        })
        .clamp(1, MAX_LIMIT);
    let from = request.from.map(token).transpose()?;
    let to = request.to.map(token).transpose()?;
    let end = reader.horizon.saturating_add(1);
    let backwards = request.dir == Direction::Backward;
    // Tokens mean what they mean for /messages: going backwards, events strictly before
    // `from` down to `to` (inclusive); going forwards, from `from` (inclusive) up to before
    // `to`.
    let (after, before) = if backwards {
        (
            to.map_or(0, |t| t.0 - 1),
            from.map_or(end, |t| t.0).min(end),
        )
    } else {
        (
            from.map_or(0, |t| t.0 - 1),
            to.map_or(end, |t| t.0).min(end),
        )
    };
    let depth = if request.recurse { RECURSION_DEPTH } else { 1 };
    let stored = store
        .relation_children(&ChildrenQuery {
            room: request.room,
            parent: request.parent,
            rel_type: request.rel_type.as_deref(),
            event_type: request.event_type.as_deref(),
            depth: i64::from(depth),
            after,
            before,
            limit,
            backwards,
        })
        .await?;
    let next_batch = (stored.len() as i64 == limit)
        .then(|| stored.last())
        .flatten()
        .map(|last| {
            let next = if backwards {
                last.stream_ordering
            } else {
                last.stream_ordering + 1
            };
            PaginationToken(next).to_string()
        });
    let pdus = visible_pdus(state, &reader, &stored).await?;
    Ok(Page {
        chunk: render(state, &reader, &pdus).await?,
        next_batch,
        prev_batch: request.from.map(str::to_owned),
        recursion_depth: request.recurse.then(|| UInt::from(depth)),
    })
}
