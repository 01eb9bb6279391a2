//! `GET /_matrix/client/v3/pushrules/` — all of the user's push rules.
//! <https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3pushrules>

use axum::extract::State;
use axum::{Json, Router};
use hearth_sync::push_rules::ruleset_json;
use ruma::api::client::push::get_pushrules_all::v3 as endpoint;
use serde_json::{Value, json};

use super::ruleset;
use crate::extract::Ruma;
use crate::ruma_glue::route as route_endpoint;
use crate::{ApiError, ApiState};

pub(crate) fn route(router: Router<ApiState>) -> Router<ApiState> {
    route_endpoint::<endpoint::Request, _, _>(router, handler)
}

/// Answered as JSON rather than through ruma's response type, which leaves out empty kinds:
/// clients are given all five, as Synapse gives them.
async fn handler(
    State(state): State<ApiState>,
    request: Ruma<endpoint::Request>,
) -> Result<Json<Value>, ApiError> {
    let rules = ruleset(&state, &request.caller()?.user_id).await?;
    Ok(Json(json!({ "global": ruleset_json(&rules) })))
}
