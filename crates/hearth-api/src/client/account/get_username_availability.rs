//! `GET /_matrix/client/v3/register/available` — is this username free?
//! <https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3registeravailable>

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use ruma::api::client::account::get_username_availability::v3 as endpoint;
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
    if state.accounts.available(&request.body.username).await? {
        Ok(RumaResponse(endpoint::Response::new(true)))
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorKind::UserInUse,
            "this username is taken",
        ))
    }
}
