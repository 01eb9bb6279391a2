//! `GET /_matrix/client/v3/pushers` — the user's pushers, as they were set.
//! <https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3pushers>

use axum::extract::State;
use axum::{Json, Router};
use ruma::api::client::push::get_pushers::v3 as endpoint;
use serde_json::{Value, json};

use crate::extract::Ruma;
use crate::ruma_glue::route as route_endpoint;
use crate::{ApiError, ApiState};

pub(crate) fn route(router: Router<ApiState>) -> Router<ApiState> {
    route_endpoint::<endpoint::Request, _, _>(router, handler)
}

async fn handler(
    State(state): State<ApiState>,
    request: Ruma<endpoint::Request>,
) -> Result<Json<Value>, ApiError> {
    let user = &request.caller()?.user_id;
    let pushers: Vec<Value> = state
        .rooms
        .store()
        .pushers(user)
        .await?
        .iter()
        .filter_map(|json| serde_json::from_str(json).ok())
        .collect();
    // Written out: the list is there even when empty.
    Ok(Json(json!({ "pushers": pushers })))
}
