//! `POST /_matrix/client/v3/search` — find messages (bodies, room names, topics) in the rooms
//! the user is in, best match or newest first, with context around each result.
//! <https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3search>
//!
//! Encrypted messages are not searchable here (the server cannot read them); clients search
//! those themselves.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Json, Router};
use hearth_rooms::Pdu;
use hearth_store::{SearchOrder, SearchQuery, search_words};
use hearth_sync::PaginationToken;
use ruma::api::client::search::search_events::v3::{self as endpoint, OrderBy, SearchKeys};
use ruma::api::error::ErrorKind;
use ruma::{OwnedRoomId, RoomId};
use serde_json::{Value, json};

use crate::client::history::{HistoryReader, visible_pdus};
use crate::client::message::get_message_events::passes;
use crate::extract::Ruma;
use crate::ruma_glue::route as route_endpoint;
use crate::{ApiError, ApiState};

const DEFAULT_LIMIT: i64 = 10;
const MAX_LIMIT: i64 = 50;
/// Context events on each side of a result, at most.
const MAX_CONTEXT: i64 = 20;
/// Reads of the index one request makes at most while results the user may not see are
/// skipped.
const MAX_READS: usize = 5;

pub(crate) fn route(router: Router<ApiState>) -> Router<ApiState> {
    route_endpoint::<endpoint::Request, _, _>(router, handler)
}

fn invalid(message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, ErrorKind::InvalidParam, message)
}

/// `next_batch` tokens: `s{before}_{offset}`: results older than the stream position `before`
/// (fixed by the first page), from `offset` on.
fn parse_token(token: &str) -> Result<(i64, i64), ApiError> {
    token
        .strip_prefix('s')
        .and_then(|t| t.split_once('_'))
        .and_then(|(b, o)| Some((b.parse().ok()?, o.parse().ok()?)))
        .filter(|(_, offset): &(i64, i64)| *offset >= 0)
        .ok_or_else(|| invalid("unknown next_batch token"))
}

async fn handler(
    State(state): State<ApiState>,
    request: Ruma<endpoint::Request>,
) -> Result<Json<Value>, ApiError> {
    let user = request.caller()?.user_id.clone();
    let body = request.body;
    let Some(criteria) = body.search_categories.room_events else {
        return Ok(Json(json!({ "search_categories": {} })));
    };
    let keys: Vec<&str> = match &criteria.keys {
        None => vec!["content.body", "content.name", "content.topic"],
        Some(keys) => keys
            .iter()
            .map(|k| match k {
                SearchKeys::ContentBody => Ok("content.body"),
                SearchKeys::ContentName => Ok("content.name"),
                SearchKeys::ContentTopic => Ok("content.topic"),
                _ => Err(invalid("unknown search key")),
            })
            .collect::<Result<_, _>>()?,
    };
    let order = match criteria.order_by {
        None | Some(OrderBy::Rank) => SearchOrder::Rank,
        Some(OrderBy::Recent) => SearchOrder::Recent,
        Some(_) => return Err(invalid("unknown order_by")),
    };
    let filter = &criteria.filter;
    let limit = filter
        .limit
        .map_or(DEFAULT_LIMIT, |l| {
            i64::try_from(u64::from(l)).unwrap_or(MAX_LIMIT)
        })
        .clamp(1, MAX_LIMIT);
    let store = state.rooms.store();
    let (before, mut offset) = match &body.next_batch {
        Some(token) => parse_token(token)?,
        None => (store.current_stream() + 1, 0),
    };

    // The rooms the user is in, narrowed by the filter, each with the user as its reader.
    let now = store.current_stream();
    let readers: BTreeMap<OwnedRoomId, HistoryReader> = store
        .memberships_of(&user)
        .await?
        .iter()
        .filter(|m| m.membership == "join")
        .filter(|m| {
            filter
                .rooms
                .as_ref()
                .is_none_or(|only| only.contains(&m.room_id))
        })
        .filter(|m| !filter.not_rooms.contains(&m.room_id))
        .map(|m| (m.room_id.clone(), HistoryReader::of(m, now)))
        .collect();
    let room_refs: Vec<&RoomId> = readers.keys().map(|r| &**r).collect();

    let mut found: Vec<(Arc<Pdu>, f64, i64)> = Vec::new();
    let mut exhausted = false;
    for _ in 0..MAX_READS {
        let want = limit - found.len() as i64;
        let hits = store
            .search(&SearchQuery {
                term: &criteria.search_term,
                rooms: &room_refs,
                keys: &keys,
                order,
                before,
                offset,
                limit: want,
            })
            .await?;
        offset += hits.len() as i64;
        exhausted = (hits.len() as i64) < want;
        let ids: Vec<_> = hits.iter().map(|h| h.event_id.clone()).collect();
        let stored = store.events(&ids).await?;
        for hit in &hits {
            let Some(event) = stored.iter().find(|e| e.event_id == hit.event_id) else {
                continue;
            };
            let Some(reader) = readers.get(&event.room_id) else {
                continue;
            };
            // The rest of the filter: types and senders.
            if let Some(pdu) = visible_pdus(&state, reader, std::slice::from_ref(event))
                .await?
                .pop()
                .filter(|pdu| passes(filter, pdu))
            {
                found.push((pdu, hit.rank, hit.stream));
            }
        }
        if exhausted || found.len() as i64 >= limit {
            break;
        }
    }

    let context = &criteria.event_context;
    let (n_before, n_after) = (
        i64::try_from(u64::from(context.before_limit))
            .unwrap_or(MAX_CONTEXT)
            .min(MAX_CONTEXT),
        i64::try_from(u64::from(context.after_limit))
            .unwrap_or(MAX_CONTEXT)
            .min(MAX_CONTEXT),
    );
    let mut results = Vec::with_capacity(found.len());
    for (pdu, rank, stream) in &found {
        let reader = readers
            .get(pdu.room())
            .ok_or_else(|| ApiError::internal("a result outside the searched rooms"))?;
        let event = state
            .rooms
            .client_events_for(reader.reader(), std::slice::from_ref(pdu))
            .await?
            .pop()
            .unwrap_or(Value::Null);
        let around = around(&state, reader, pdu.room(), *stream, n_before, n_after).await?;
        let mut context_json = json!({
            "events_before": around.before_events,
            "events_after": around.after_events,
            "start": around.start.to_string(),
            "end": around.end.to_string(),
        });
        if context.include_profile {
            let senders: BTreeSet<String> = std::iter::once(pdu.sender().to_string())
                .chain(around.senders)
                .collect();
            let mut profiles = serde_json::Map::new();
            for sender in senders {
                let Ok(id) = ruma::OwnedUserId::try_from(sender.as_str()) else {
                    continue;
                };
                if let Some(profile) = state.rooms.store().profile(&id).await? {
                    let mut entry = json!({});
                    if let Some(name) = profile.displayname {
                        entry["displayname"] = name.into();
                    }
                    if let Some(url) = profile.avatar_url {
                        entry["avatar_url"] = url.into();
                    }
                    profiles.insert(sender, entry);
                }
            }
            context_json["profile_info"] = Value::Object(profiles);
        }
        results.push(json!({ "rank": rank, "result": event, "context": context_json }));
    }
    let mut room_events = json!({
        "results": results,
        "highlights": search_words(&criteria.search_term),
    });
    if !exhausted {
        room_events["next_batch"] = format!("s{before}_{offset}").into();
    }
    Ok(Json(
        json!({ "search_categories": { "room_events": room_events } }),
    ))
}

/// The events around a result that the reader may see.
struct Around {
    before_events: Vec<Value>,
    after_events: Vec<Value>,
    start: PaginationToken,
    end: PaginationToken,
    senders: Vec<String>,
}

async fn around(
    state: &ApiState,
    reader: &HistoryReader,
    room: &RoomId,
    stream: i64,
    n_before: i64,
    n_after: i64,
) -> Result<Around, ApiError> {
    let store = state.rooms.store();
    let before = if n_before > 0 {
        store
            .room_events_backwards(room, 0, stream - 1, n_before)
            .await?
    } else {
        Vec::new()
    };
    let after = if n_after > 0 {
        store
            .room_events_forwards(room, stream + 1, reader.horizon + 1, n_after)
            .await?
    } else {
        Vec::new()
    };
    let start = PaginationToken(before.last().map_or(stream, |e| e.stream_ordering));
    let end = PaginationToken(after.last().map_or(stream + 1, |e| e.stream_ordering + 1));
    let before = visible_pdus(state, reader, &before).await?;
    let after = visible_pdus(state, reader, &after).await?;
    let senders = before
        .iter()
        .chain(&after)
        .map(|p| p.sender().to_string())
        .collect();
    Ok(Around {
        before_events: state
            .rooms
            .client_events_for(reader.reader(), &before)
            .await?,
        after_events: state
            .rooms
            .client_events_for(reader.reader(), &after)
            .await?,
        start,
        end,
        senders,
    })
}
