//! `POST /_matrix/client/unstable/org.matrix.simplified_msc3575/sync` — simplified sliding
//! sync (MSC4186): the rooms of the client's lists and subscriptions, and only what changed
//! since its `pos`, waiting up to `timeout` for news.
//! <https://github.com/matrix-org/matrix-spec-proposals/pull/4186>
//!
//! The work is `hearth_sync::Syncer::sliding_sync`; this handler only names the caller and
//! reads the fields ruma's types leave out (`RequestExtras`).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use hearth_sync::sliding::extras::{ExtrasError, RequestExtras};
use ruma::api::client::sync::sync_events::v5 as endpoint;
use ruma::api::error::ErrorKind;

use crate::extract::Ruma;
use crate::ruma_glue::{RumaResponse, route as route_endpoint};
use crate::{ApiError, ApiState};

pub(crate) fn route(router: Router<ApiState>) -> Router<ApiState> {
    route_endpoint::<endpoint::Request, _, _>(router, handler)
}

async fn handler(
    State(state): State<ApiState>,
    request: Ruma<endpoint::Request>,
) -> Result<RumaResponse<endpoint::Response>, ApiError> {
    let caller = request.caller()?.clone();
    if !hearth_sync::presence::is_known(&request.body.set_presence) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorKind::InvalidParam,
            "set_presence must be online, unavailable or offline",
        ));
    }
    let extras = RequestExtras::from_body(request.raw_body()).map_err(|e| {
        let kind = match e {
            ExtrasError::BadJson(_) => ErrorKind::BadJson,
            ExtrasError::TooMany(_) => ErrorKind::InvalidParam,
        };
        ApiError::new(StatusCode::BAD_REQUEST, kind, e.to_string())
    })?;
    let response = state
        .sync
        .sliding_sync(&caller.user_id, &caller.device_id, &request.body, &extras)
        .await?;
    Ok(RumaResponse(response))
}
