//! `POST /_matrix/client/v3/logout/all` — end every session of this user.
//! <https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3logoutall>

use axum::Router;
use axum::extract::State;
use ruma::api::client::session::logout_all::v3 as endpoint;

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
    state
        .accounts
        .logout_all(&request.caller()?.user_id)
        .await?;
    Ok(RumaResponse(endpoint::Response::new()))
}
