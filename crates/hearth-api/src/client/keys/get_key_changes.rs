//! `GET /_matrix/client/v3/keys/changes?from=&to=` — the users whose device lists changed
//! between two sync tokens.
//! <https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3keyschanges>

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use hearth_sync::SyncToken;
use ruma::api::client::keys::get_key_changes::v3 as endpoint;
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
    let parse = |token: &str| {
        token.parse::<SyncToken>().map_err(|()| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorKind::InvalidParam,
                format!("{token:?} is not a sync token of this server"),
            )
        })
    };
    let from = parse(&request.body.from)?;
    let to = parse(&request.body.to)?;
    let changes = state
        .e2ee
        .device_list_changes(
            &caller.user_id,
            (from.events, from.device_lists),
            (to.events, to.device_lists),
        )
        .await?;
    Ok(RumaResponse(endpoint::Response::new(
        changes.changed,
        changes.left,
    )))
}
