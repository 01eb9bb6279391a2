//! `POST /_matrix/client/v3/rooms/{roomId}/invite` — invite a user.
//! <https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3roomsroomidinvite>

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use ruma::api::client::membership::invite_user::v3::{self as endpoint, InvitationRecipient};
use ruma::api::error::ErrorKind;

use super::invite;
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
    let sender = request.caller()?.user_id.clone();
    let body = request.body;
    let InvitationRecipient::UserId(recipient) = &body.recipient else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorKind::Unrecognized,
            "third-party invites are not supported",
        ));
    };
    let reason = recipient.reason.as_deref();
    invite(&state, &body.room_id, &sender, &recipient.user_id, reason).await?;
    Ok(RumaResponse(endpoint::Response::new()))
}
