//! `PUT /_matrix/client/v3/user/{userId}/account_data/{type}` — set a global account-data
//! object.
//! <https://spec.matrix.org/v1.16/client-server-api/#put_matrixclientv3useruseridaccount_datatype>

use axum::Router;
use axum::extract::State;
use ruma::api::client::config::set_global_account_data::v3 as endpoint;

use super::ensure_client_settable;
use crate::client::user_access::{ensure_self, json_object};
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
    request.require_body()?;
    let body = &request.body;
    ensure_self(request.caller()?, &body.user_id, "account data")?;
    state
        .rate_limits
        .settings
        .check(RateKey::user(&body.user_id))?;
    let data_type = body.event_type.to_string();
    ensure_client_settable(&data_type)?;
    let content = json_object(body.data.json())?;
    let content = serde_json::to_string(&content).map_err(ApiError::internal)?;
    state
        .rooms
        .store()
        .set_account_data(&body.user_id, None, &data_type, &content)
        .await?;
    Ok(RumaResponse(endpoint::Response::new()))
}
