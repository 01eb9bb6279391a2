//! `POST /_matrix/client/v3/rooms/{roomId}/report/{eventId}` — report an event to the server's
//! administrators. Kept in the database (`event_reports`) and logged; 404 when the event is
//! not there or the reporter may not see it, so that reports cannot probe for events.
//! <https://spec.matrix.org/v1.12/client-server-api/#post_matrixclientv3roomsroomidreporteventid>

use axum::Router;
use axum::extract::State;
use ruma::api::client::room::report_content::v3 as endpoint;

use crate::client::history::{history_reader, not_found, visible_pdus};
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
    state.rate_limits.settings.check(RateKey::user(user))?;
    let body = &request.body;
    let reader = history_reader(&state, &body.room_id, user)
        .await?
        .ok_or_else(not_found)?;
    let store = state.rooms.store();
    let stored = store
        .event(&body.event_id)
        .await?
        .filter(|e| e.room_id == body.room_id)
        .ok_or_else(not_found)?;
    visible_pdus(&state, &reader, std::slice::from_ref(&stored))
        .await?
        .pop()
        .ok_or_else(not_found)?;
    store
        .report_event(&body.room_id, &body.event_id, user, body.reason.as_deref())
        .await?;
    tracing::info!(room_id = %body.room_id, event_id = %body.event_id, reporter = %user,
        "event reported");
    Ok(RumaResponse(endpoint::Response::new()))
}
