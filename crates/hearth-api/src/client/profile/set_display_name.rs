//! `PUT /_matrix/client/v3/profile/{userId}/displayname` — set one's display name.
//! <https://spec.matrix.org/v1.16/client-server-api/#put_matrixclientv3profileuseridkeyname>

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use ruma::api::client::profile::set_display_name::v3 as endpoint;
use ruma::api::error::ErrorKind;

use super::{MAX_DISPLAYNAME_CHARS, propagate};
use crate::client::user_access::ensure_self;
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
    let body = &request.body;
    ensure_self(request.caller()?, &body.user_id, "profile")?;
    state
        .rate_limits
        .profile
        .check(RateKey::user(&body.user_id))?;
    // An empty (or absent) name clears it, as clients expect.
    let name = body.displayname.as_deref().filter(|name| !name.is_empty());
    if name.is_some_and(|name| name.chars().count() > MAX_DISPLAYNAME_CHARS) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorKind::InvalidParam,
            format!("display names are at most {MAX_DISPLAYNAME_CHARS} characters"),
        ));
    }
    state
        .rooms
        .store()
        .set_displayname(&body.user_id, name)
        .await?;
    propagate(&state, &body.user_id).await?;
    Ok(RumaResponse(endpoint::Response::new()))
}
