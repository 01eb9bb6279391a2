//! `GET /_matrix/client/v3/user/{userId}/rooms/{roomId}/tags` — the user's tags on a room.
//! <https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3useruseridroomsroomidtags>

use axum::Router;
use axum::extract::State;
use ruma::api::client::tag::get_tags::v3 as endpoint;

use super::{TAG_TYPE, parse_tags, tag_map};
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
    ensure_self(request.caller()?, &body.user_id, "tags")?;
    let content = state
        .rooms
        .store()
        .account_data(&body.user_id, Some(&body.room_id), TAG_TYPE)
        .await?;
    let tags = parse_tags(tag_map(content.as_deref()));
    Ok(RumaResponse(endpoint::Response::new(tags)))
}
