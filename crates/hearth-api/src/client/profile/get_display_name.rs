//! `GET /_matrix/client/v3/profile/{userId}/displayname` — a user's display name.
//! <https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3profileuseridkeyname>

use axum::Router;
use axum::extract::State;
use ruma::api::client::profile::get_display_name::v3 as endpoint;

use super::profile_of;
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
    let profile = profile_of(&state, &request.body.user_id).await?;
    Ok(RumaResponse(endpoint::Response::new(profile.displayname)))
}
