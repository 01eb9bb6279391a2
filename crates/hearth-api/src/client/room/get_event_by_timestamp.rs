//! `GET /_matrix/client/v1/rooms/{roomId}/timestamp_to_event` — the event nearest a point in
//! time, for "jump to date".
//! <https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv1roomsroomidtimestamp_to_event>

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use ruma::api::Direction;
use ruma::api::client::room::get_event_by_timestamp::v1 as endpoint;
use ruma::api::error::ErrorKind;
use ruma::{MilliSecondsSinceUnixEpoch, UInt};

use crate::client::history::{history_reader, not_member, visible_pdus};
use crate::extract::Ruma;
use crate::ruma_glue::{RumaResponse, route as route_endpoint};
use crate::{ApiError, ApiState};

/// Candidates looked at, nearest first, for one the reader may see.
// NOTSPEC: an answer hidden behind more events the reader may not see is "not found".
const CANDIDATES: i64 = 50;

pub(crate) fn route(router: Router<ApiState>) -> Router<ApiState> {
    route_endpoint::<endpoint::Request, _, _>(router, handler)
}

async fn handler(
    State(state): State<ApiState>,
    request: Ruma<endpoint::Request>,
) -> Result<RumaResponse<endpoint::Response>, ApiError> {
    let user = request.caller()?.user_id.clone();
    let body = request.body;
    let reader = history_reader(&state, &body.room_id, &user)
        .await?
        .ok_or_else(not_member)?;
    let ts = i64::try_from(u64::from(body.ts.get())).unwrap_or(i64::MAX);
    let forwards = body.dir == Direction::Forward;
    let candidates = state
        .rooms
        .store()
        .room_events_near_ts(&body.room_id, ts, forwards, reader.horizon, CANDIDATES)
        .await?;
    let nearest = visible_pdus(&state, &reader, &candidates)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                ErrorKind::NotFound,
                "no event in that direction from that time",
            )
        })?;
    let origin_server_ts = MilliSecondsSinceUnixEpoch(
        UInt::try_from(u64::from(nearest.origin_server_ts().get())).unwrap_or(UInt::MAX),
    );
    Ok(RumaResponse(endpoint::Response::new(
        nearest.owned_event_id().clone(),
        origin_server_ts,
    )))
}
