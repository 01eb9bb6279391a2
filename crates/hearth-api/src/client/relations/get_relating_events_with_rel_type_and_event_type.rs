//! `GET /_matrix/client/v1/rooms/{roomId}/relations/{eventId}/{relType}/{eventType}` — the
//! children of an event with one `rel_type` and event type.
//! <https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv1roomsroomidrelationseventidreltypeeventtype>

use axum::Router;
use axum::extract::State;
use ruma::api::client::relations::get_relating_events_with_rel_type_and_event_type::v1 as endpoint;

use super::{Request, children};
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
    let user = request.caller()?.user_id.clone();
    let body = &request.body;
    let page = children(
        &state,
        &user,
        Request {
            room: &body.room_id,
            parent: &body.event_id,
            rel_type: Some(body.rel_type.to_string()),
            event_type: Some(body.event_type.to_string()),
            from: body.from.as_deref(),
            to: body.to.as_deref(),
            limit: body.limit,
            dir: body.dir,
            recurse: body.recurse,
        },
    )
    .await?;
    let mut response = endpoint::Response::new(page.chunk);
    response.next_batch = page.next_batch;
    response.prev_batch = page.prev_batch;
    response.recursion_depth = page.recursion_depth;
    Ok(RumaResponse(response))
}
