//! `POST /_matrix/client/v3/rooms/{roomId}/unban` — lift a ban.
//! <https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3roomsroomidunban>

use axum::Router;
use axum::extract::State;
use ruma::api::client::membership::unban_user::v3 as endpoint;

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
    // An unban is a `leave` by someone else; it must not kick a member who isn't banned.
    if membership_of(&state, &body.room_id, &body.user_id)
        .await?
        .as_deref()
        != Some("ban")
    {
        return Err(refuse("the user is not banned"));
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
