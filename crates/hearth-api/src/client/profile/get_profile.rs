//! `GET /_matrix/client/v3/profile/{userId}` — a user's display name and avatar URL.
//! <https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3profileuserid>

use axum::Router;
use axum::extract::State;
use ruma::api::client::profile::get_profile::v3 as endpoint;
use serde_json::Value;

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
    let fields = [
        ("displayname", profile.displayname),
        ("avatar_url", profile.avatar_url),
    ];
    Ok(RumaResponse(
        fields
            .into_iter()
            .filter_map(|(key, value)| Some((key.to_owned(), Value::String(value?))))
            .collect(),
    ))
}
