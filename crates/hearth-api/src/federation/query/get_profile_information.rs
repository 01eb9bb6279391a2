//! `GET /_matrix/federation/v1/query/profile` — a local user's display name and avatar, or
//! the one `field` asked for.
//! <https://spec.matrix.org/v1.16/server-server-api/#get_matrixfederationv1queryprofile>

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use ruma::api::error::ErrorKind;
use ruma::api::federation::query::get_profile_information::v1 as endpoint;
use serde_json::Value;

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
    tracing::debug!(origin = %request.origin()?, "profile query");
    let user = &request.body.user_id;
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, ErrorKind::NotFound, "no such user");
    if user.server_name() != state.server_name {
        return Err(not_found());
    }
    let profile = state
        .rooms
        .store()
        .profile(user)
        .await?
        .ok_or_else(not_found)?;
    let wanted = request.body.field.as_ref().map(|f| f.as_str().to_owned());
    let mut response = endpoint::Response::new();
    for (field, value) in [
        ("displayname", profile.displayname),
        ("avatar_url", profile.avatar_url),
    ] {
        if let Some(value) = value
            && wanted.as_deref().is_none_or(|w| w == field)
        {
            response.data.set(field.to_owned(), Value::String(value));
        }
    }
    Ok(RumaResponse(response))
}
