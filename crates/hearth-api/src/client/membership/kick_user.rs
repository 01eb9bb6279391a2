//! `POST /_matrix/client/v3/rooms/{roomId}/kick` — remove a user from the room.
//! <https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3roomsroomidkick>

use axum::Router;
use axum::extract::State;
use ruma::api::client::membership::kick_user::v3 as endpoint;

use super::{membership_of, refuse, set_membership};
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
    let sender = &request.caller()?.user_id;
    let body = &request.body;
    // A kick is a `leave` by someone else: it must not quietly lift a ban, and there is
    // nobody to kick who is not in the room (joined, invited or knocking).
    match membership_of(&state, &body.room_id, &body.user_id)
        .await?
        .as_deref()
    {
        Some("ban") => return Err(refuse("the user is banned; unban them instead")),
        Some("join" | "invite" | "knock") => {}
        _ => return Err(refuse("the user is not in the room")),
    }
    set_membership(
        &state,
        &body.room_id,
        sender,
        &body.user_id,
        "leave",
        body.reason.as_deref(),
    )
    .await?;
    Ok(RumaResponse(endpoint::Response::new()))
}
