//! `GET /_matrix/client/v3/account/3pid` — the email addresses and phone numbers bound to the
//! account. Hearth binds none (it has no identity-server or email support), so the list is
//! always empty; clients' account settings show it so.
//! <https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3account3pid>

use axum::extract::State;
use axum::{Json, Router};
use ruma::api::client::account::get_3pids::v3 as endpoint;
use serde_json::{Value, json};

use crate::extract::Ruma;
use crate::ruma_glue::route as route_endpoint;
use crate::{ApiError, ApiState};

pub(crate) fn route(router: Router<ApiState>) -> Router<ApiState> {
    route_endpoint::<endpoint::Request, _, _>(router, handler)
}

async fn handler(
    State(_state): State<ApiState>,
    request: Ruma<endpoint::Request>,
) -> Result<Json<Value>, ApiError> {
    request.caller()?;
    // Written out: ruma would leave the empty list out, and some clients index it.
    Ok(Json(json!({ "threepids": [] })))
}
