//! `PUT /_matrix/client/v3/presence/{userId}/status` — set one's own presence and status
//! message.
//! <https://spec.matrix.org/v1.16/client-server-api/#put_matrixclientv3presenceuseridstatus>

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use hearth_sync::presence::is_known;
use ruma::api::client::presence::set_presence::v3 as endpoint;
use ruma::api::error::ErrorKind;

use crate::client::user_access::ensure_self;
use crate::extract::Ruma;
use crate::rate_limit::RateKey;
use crate::ruma_glue::{RumaResponse, route as route_endpoint};
use crate::{ApiError, ApiState};

/// The longest status message kept, in bytes.
// NOTSPEC: the spec sets no limit; every room-mate's sync carries the message.
const MAX_STATUS_MSG: usize = 1024;

pub(crate) fn route(router: Router<ApiState>) -> Router<ApiState> {
    route_endpoint::<endpoint::Request, _, _>(router, handler)
}

async fn handler(
    State(state): State<ApiState>,
    request: Ruma<endpoint::Request>,
) -> Result<RumaResponse<endpoint::Response>, ApiError> {
    let caller = request.caller()?;
    state
        .rate_limits
        .ephemeral
        .check(RateKey::user(&caller.user_id))?;
    let body = &request.body;
    ensure_self(caller, &body.user_id, "presence")?;
    if !is_known(&body.presence) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorKind::InvalidParam,
            "presence must be online, unavailable or offline",
        ));
    }
    if body
        .status_msg
        .as_ref()
        .is_some_and(|m| m.len() > MAX_STATUS_MSG)
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorKind::InvalidParam,
            format!("status_msg is longer than {MAX_STATUS_MSG} bytes"),
        ));
    }
    state.sync.presence().set(
        &body.user_id,
        body.presence.clone(),
        body.status_msg.clone(),
    );
    Ok(RumaResponse(endpoint::Response::new()))
}
