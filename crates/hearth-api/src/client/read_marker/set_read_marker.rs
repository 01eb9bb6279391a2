//! `POST /_matrix/client/v3/rooms/{roomId}/read_markers` — move the fully-read marker and the
//! read receipts in one call.
//! <https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3roomsroomidread_markers>

use axum::Router;
use axum::extract::State;
use ruma::api::client::read_marker::set_read_marker::v3 as endpoint;

use crate::client::receipt::{check_target, store_fully_read, store_receipt};
use crate::extract::Ruma;
use crate::rate_limit::RateKey;
use crate::ruma_glue::{RumaResponse, route as route_endpoint};
use crate::{ApiError, ApiState};

pub(crate) fn route(router: Router<ApiState>) -> Router<ApiState> {
    route_endpoint::<endpoint::Request, _, _>(router, handler)
}

async fn handler(
    State(state): State<ApiState>,
    request: Ruma<endpoint::Request>,
) -> Result<RumaResponse<endpoint::Response>, ApiError> {
    let user = &request.caller()?.user_id;
    state.rate_limits.ephemeral.check(RateKey::user(user))?;
    let body = &request.body;
    let room = &body.room_id;
    // Check every target first so that a bad one changes nothing.
    for event in [
        &body.fully_read,
        &body.read_receipt,
        &body.private_read_receipt,
    ]
    .into_iter()
    .flatten()
    {
        check_target(&state, room, user, event).await?;
    }
    if let Some(event) = &body.fully_read {
        store_fully_read(&state, room, user, event).await?;
    }
    if let Some(event) = &body.read_receipt {
        store_receipt(&state, room, user, "m.read", None, event).await?;
    }
    if let Some(event) = &body.private_read_receipt {
        store_receipt(&state, room, user, "m.read.private", None, event).await?;
    }
    Ok(RumaResponse(endpoint::Response::new()))
}
