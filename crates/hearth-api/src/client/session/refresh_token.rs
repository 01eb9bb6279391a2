//! `POST /_matrix/client/v3/refresh` — trade a refresh token for new tokens.
//! <https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3refresh>

use axum::Router;
use axum::extract::State;
use ruma::api::client::session::refresh_token::v3 as endpoint;

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
    let session = state.accounts.refresh(&request.body.refresh_token).await?;
    let mut response = endpoint::Response::new(session.access_token);
    response.refresh_token = session.refresh_token;
    response.expires_in_ms = session.expires_in;
    Ok(RumaResponse(response))
}
