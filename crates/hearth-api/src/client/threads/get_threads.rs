//! `GET /_matrix/client/v1/rooms/{roomId}/threads` — the room's thread roots, most recent
//! activity first, with their aggregations bundled.
//! <https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv1roomsroomidthreads>

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use hearth_rooms::Pdu;
use hearth_sync::PaginationToken;
use ruma::OwnedEventId;
use ruma::api::client::threads::get_threads::v1::{self as endpoint, IncludeThreads};

use crate::client::history::{history_reader, not_member, render, token, visible_pdus};
use crate::extract::Ruma;
use crate::ruma_glue::{RumaResponse, route as route_endpoint};
use crate::{ApiError, ApiState};

const DEFAULT_LIMIT: i64 = 20;
const MAX_LIMIT: i64 = 100;
/// Reads of `limit` roots one request makes at most; a page is then shorter than asked, with a
/// token to go on from.
const MAX_READS: usize = 10;

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
    let limit = body
        .limit
        .map_or(DEFAULT_LIMIT, |l| {
            i64::try_from(u64::from(l)).unwrap_or(MAX_LIMIT)
        })
        .clamp(1, MAX_LIMIT);
    // A token is `t{before}_{snapshot}`: threads whose newest activity as of the snapshot (the
    // first page's position) is older than `before` come next. Activity after the snapshot
    // does not move a thread past the pages already read.
    let (before, snapshot) = match &body.from {
        Some(from) => ThreadsToken::parse(from)?,
        None => (reader.horizon.saturating_add(1), reader.horizon),
    };
    let snapshot = snapshot.min(reader.horizon);
    let participant = (body.include == IncludeThreads::Participated).then_some(&*user);
    let store = state.rooms.store();
    // Roots the reader may not see are skipped, so a page may take several reads to fill.
    let mut shown: Vec<Arc<Pdu>> = Vec::new();
    let mut next_batch = None;
    let mut cursor = before;
    for _ in 0..MAX_READS {
        let roots = store
            .thread_roots(room, snapshot, cursor, participant, limit)
            .await?;
        let ids: Vec<_> = roots.iter().map(|(id, _)| id.clone()).collect();
        let visible: HashMap<OwnedEventId, Arc<Pdu>> =
            visible_pdus(&state, &reader, &store.events(&ids).await?)
                .await?
                .into_iter()
                .map(|p| (p.owned_event_id().clone(), p))
                .collect();
        for (root, latest) in &roots {
            if let Some(pdu) = visible.get(root) {
                shown.push(pdu.clone());
            }
            cursor = *latest;
            if shown.len() as i64 == limit {
                break;
            }
        }
        let more = roots.len() as i64 == limit || shown.len() as i64 == limit;
        // The next page starts below the last root looked at.
        next_batch = more.then(|| ThreadsToken::write(cursor, snapshot));
        if !more || shown.len() as i64 == limit {
            break;
        }
    }
    let mut response = endpoint::Response::new(render(&state, &reader, &shown).await?);
    response.next_batch = next_batch;
    Ok(RumaResponse(response))
}

/// `/threads` pagination tokens: `t{before}_{snapshot}`. A plain pagination token (`t{n}`, or
/// a sync token) reads as "before n, as of now".
struct ThreadsToken;

impl ThreadsToken {
    fn write(before: i64, snapshot: i64) -> String {
        format!("{}_{snapshot}", PaginationToken(before))
    }

    fn parse(value: &str) -> Result<(i64, i64), ApiError> {
        if let Some((before, snapshot)) = value.split_once('_')
            && let (Ok(before), Ok(snapshot)) = (token(before), snapshot.parse::<i64>())
            && value.starts_with('t')
        {
            return Ok((before.0, snapshot));
        }
        Ok((token(value)?.0, i64::MAX))
    }
}
