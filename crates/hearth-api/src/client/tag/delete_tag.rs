//! `DELETE /_matrix/client/v3/user/{userId}/rooms/{roomId}/tags/{tag}` — remove a tag.
//! <https://spec.matrix.org/v1.16/client-server-api/#delete_matrixclientv3useruseridroomsroomidtagstag>

use axum::Router;
use axum::extract::State;
use ruma::api::client::tag::delete_tag::v3 as endpoint;

use super::{TAG_TYPE, tag_content, tag_map};
use crate::client::user_access::ensure_self;
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
    let body = &request.body;
    ensure_self(request.caller()?, &body.user_id, "tags")?;
    state
        .rate_limits
        .settings
        .check(RateKey::user(&body.user_id))?;
    // Removing a tag the room doesn't have succeeds without writing anything.
    state
        .rooms
        .store()
        .update_account_data(&body.user_id, Some(&body.room_id), TAG_TYPE, |current| {
            let mut tags = tag_map(current);
            tags.remove(&body.tag)?;
            Some(tag_content(tags))
        })
        .await?;
    Ok(RumaResponse(endpoint::Response::new()))
}
