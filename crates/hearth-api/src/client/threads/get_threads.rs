//! `GET /_matrix/client/v1/rooms/{roomId}/threads` — the room's thread roots, most recent
//! activity first, with their aggregations bundled.
//! <https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv1roomsroomidthreads>

use std::collections::HashMap;

use axum::Router;
use axum::extract::State;
use hearth_sync::PaginationToken;
use ruma::api::client::threads::get_threads::v1::{self as endpoint, IncludeThreads};

use crate::client::history::{history_reader, not_member, render, token, visible_pdus};
use crate::extract::Ruma;
use crate::ruma_glue::{RumaResponse, route as route_endpoint};
use crate::{ApiError, ApiState};

const DEFAULT_LIMIT: i64 = 20;
const MAX_LIMIT: i64 = 100;

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
    // A token is the newest activity of the last thread listed: older threads come next.
    let before = match &body.from {
        Some(from) => token(from)?.0,
        None => reader.horizon.saturating_add(1),
    };
    let participant = (body.include == IncludeThreads::Participated).then_some(&*user);
    let store = state.rooms.store();
    let roots = store
        .thread_roots(room, reader.horizon, before, participant, limit)
        .await?;
    let next_batch = (roots.len() as i64 == limit)
        .then(|| roots.last())
        .flatten()
        .map(|(_, latest)| PaginationToken(*latest).to_string());

    let ids: Vec<_> = roots.iter().map(|(id, _)| id.clone()).collect();
    let mut by_id: HashMap<_, _> = store
        .events(&ids)
        .await?
        .into_iter()
        .map(|e| (e.event_id.clone(), e))
        .collect();
    let stored: Vec<_> = ids.iter().filter_map(|id| by_id.remove(id)).collect();
    let pdus = visible_pdus(&state, &reader, &stored).await?;
    let mut response = endpoint::Response::new(render(&state, &reader, &pdus).await?);
    response.next_batch = next_batch;
    Ok(RumaResponse(response))
}
