//! `GET /_matrix/client/v3/pushrules/global/` — the user's push rules of the global scope.
//! <https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3pushrulesglobal>

use axum::extract::State;
use axum::{Json, Router};
use hearth_sync::push_rules::ruleset_json;
use ruma::api::client::push::get_pushrules_global_scope::v3 as endpoint;
use serde_json::Value;

use super::ruleset;
use crate::extract::Ruma;
use crate::ruma_glue::route as route_endpoint;
use crate::{ApiError, ApiState};

pub(crate) fn route(router: Router<ApiState>) -> Router<ApiState> {
    route_endpoint::<endpoint::Request, _, _>(router, handler)
}

/// As JSON, with all five kinds (see `get_pushrules_all`).
async fn handler(
    State(state): State<ApiState>,
    request: Ruma<endpoint::Request>,
) -> Result<Json<Value>, ApiError> {
    let rules = ruleset(&state, &request.caller()?.user_id).await?;
    Ok(Json(ruleset_json(&rules)))
}
