//! `GET /_matrix/client/v3/presence/{userId}/status` — a user's presence, for the user
//! themselves and those who share a room with them.
//! <https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3presenceuseridstatus>

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Json, Router};
use ruma::api::client::presence::get_presence::v3 as endpoint;
use ruma::api::error::ErrorKind;
use serde_json::Value;

use crate::extract::Ruma;
use crate::ruma_glue::route as route_endpoint;
use crate::{ApiError, ApiState};

pub(crate) fn route(router: Router<ApiState>) -> Router<ApiState> {
    route_endpoint::<endpoint::Request, _, _>(router, handler)
}

async fn handler(
    State(state): State<ApiState>,
    request: Ruma<endpoint::Request>,
) -> Result<Json<Value>, ApiError> {
    let caller = request.caller()?;
    let user = &request.body.user_id;
    if *user != caller.user_id && !share_a_room(&state, &caller.user_id, user).await? {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorKind::Forbidden,
            "you do not share a room with this user",
        ));
    }
    Ok(Json(state.sync.presence().content(user)))
}

async fn share_a_room(
    state: &ApiState,
    reader: &ruma::UserId,
    user: &ruma::UserId,
) -> Result<bool, ApiError> {
    let store = state.rooms.store();
    let theirs = store.memberships_of(user).await?;
    let mine = store.memberships_of(reader).await?;
    Ok(theirs.iter().filter(|m| m.membership == "join").any(|m| {
        mine.iter()
            .any(|n| n.membership == "join" && n.room_id == m.room_id)
    }))
}
