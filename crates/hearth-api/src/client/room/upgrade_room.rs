//! `POST /_matrix/client/v3/rooms/{roomId}/upgrade` — replace a room by one of another room
//! version: the event work is `Rooms::upgrade_room`; here the local aliases and the directory
//! entry follow the room.
//! <https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3roomsroomidupgrade>

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use hearth_rooms::Upgrade;
use ruma::api::client::room::upgrade_room::v3 as endpoint;
use ruma::api::error::ErrorKind;
use serde_json::Map;

use crate::client::room_access::require_joined;
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
    let user = request.caller()?.user_id.clone();
    state.rate_limits.send.check(RateKey::user(&user))?;
    let body = request.body;
    if body.new_version.rules().is_none() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorKind::UnsupportedRoomVersion,
            format!("room version {} is not supported", body.new_version),
        ));
    }
    require_joined(&state.rooms, &body.room_id, &user).await?;
    let store = state.rooms.store();
    let mut join = Map::new();
    if let Some(profile) = store.profile(&user).await? {
        crate::client::profile::apply_to_member_content(&profile, &mut join);
    }
    let new_room = state
        .rooms
        .upgrade_room(Upgrade {
            room: body.room_id.clone(),
            user,
            new_version: body.new_version,
            additional_creators: body.additional_creators,
            creator_join_content: join,
        })
        .await?;
    store.move_aliases(&body.room_id, &new_room).await?;
    if store.is_published(&body.room_id).await? {
        store.set_published(&new_room, true).await?;
        store.set_published(&body.room_id, false).await?;
    }
    Ok(RumaResponse(endpoint::Response::new(new_room)))
}
