//! `GET /_matrix/client/v3/user/{userId}/rooms/{roomId}/account_data/{type}` — one room
//! account-data object.
//! <https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3useruseridroomsroomidaccount_datatype>

use axum::Router;
use axum::extract::State;
use ruma::api::client::config::get_room_account_data::v3 as endpoint;

use super::found;
use crate::client::user_access::ensure_self;
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
    let body = &request.body;
    ensure_self(request.caller()?, &body.user_id, "account data")?;
    let content = state
        .rooms
        .store()
        .account_data(
            &body.user_id,
            Some(&body.room_id),
            &body.event_type.to_string(),
        )
        .await?;
    Ok(RumaResponse(endpoint::Response::new(found(content)?)))
}
