//! `PUT /_matrix/client/v3/profile/{userId}/avatar_url` — set one's avatar URL.
//! <https://spec.matrix.org/v1.16/client-server-api/#put_matrixclientv3profileuseridkeyname>

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use ruma::api::client::profile::set_avatar_url::v3 as endpoint;
use ruma::api::error::ErrorKind;

use super::{MAX_AVATAR_URL_BYTES, propagate};
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
    // An empty (or absent) URL removes the avatar, as clients expect.
    let url = body
        .avatar_url
        .as_ref()
        .filter(|url| !url.as_str().is_empty());
    if let Some(url) = url {
        let invalid =
            |why: String| ApiError::new(StatusCode::BAD_REQUEST, ErrorKind::InvalidParam, why);
        if url.as_str().len() > MAX_AVATAR_URL_BYTES {
            return Err(invalid(format!(
                "avatar URLs are at most {MAX_AVATAR_URL_BYTES} bytes"
            )));
        }
        url.validate()
            .map_err(|e| invalid(format!("avatar_url must be an mxc:// URI: {e}")))?;
    }
    state
        .rooms
        .store()
        .set_avatar_url(&body.user_id, url.map(|url| url.as_str()))
        .await?;
    propagate(&state, &body.user_id).await?;
    Ok(RumaResponse(endpoint::Response::new()))
}
