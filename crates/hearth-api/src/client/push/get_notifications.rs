//! `GET /_matrix/client/v3/notifications` — the events that notified the user, newest first.
//! <https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3notifications>

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Json, Router};
use ruma::api::client::push::get_notifications::v3 as endpoint;
use ruma::api::error::ErrorKind;
use serde_json::{Value, json};

use crate::extract::Ruma;
use crate::ruma_glue::route as route_endpoint;
use crate::{ApiError, ApiState};

const DEFAULT_LIMIT: u64 = 20;
const MAX_LIMIT: u64 = 100;

pub(crate) fn route(router: Router<ApiState>) -> Router<ApiState> {
    route_endpoint::<endpoint::Request, _, _>(router, handler)
}

async fn handler(
    State(state): State<ApiState>,
    request: Ruma<endpoint::Request>,
) -> Result<Json<Value>, ApiError> {
    let user = request.caller()?.user_id.clone();
    let body = request.body;
    let invalid =
        |what: &str| ApiError::new(StatusCode::BAD_REQUEST, ErrorKind::InvalidParam, what);
    let before = match &body.from {
        Some(from) => Some(
            from.parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| invalid("unknown from token"))?,
        ),
        None => None,
    };
    let limit = body
        .limit
        .map_or(DEFAULT_LIMIT, u64::from)
        .clamp(1, MAX_LIMIT);
    // The spec defines only "highlight"; other values filter nothing.
    let only_highlight = body.only.as_deref() == Some("highlight");
    let page = state
        .sync
        .notifications(
            &user,
            before,
            usize::try_from(limit).unwrap_or(usize::MAX),
            only_highlight,
        )
        .await
        .map_err(ApiError::internal)?;
    let mut response = json!({ "notifications": page.notifications });
    if let Some(token) = page.next_token {
        response["next_token"] = token.into();
    }
    Ok(Json(response))
}
