//! `GET /_matrix/client/v3/rooms/{roomId}/joined_members` — who is in the room, with profiles.
//! <https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3roomsroomidjoined_members>

use axum::extract::State;
use axum::{Json, Router};
use ruma::api::client::membership::joined_members::v3 as endpoint;
use serde_json::{Value, json};

use crate::client::room_access::require_joined;
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
    let user = &request.caller()?.user_id;
    let room = &request.body.room_id;
    require_joined(&state.rooms, room, user).await?;
    let members = state.rooms.store().room_members(room, Some("join")).await?;
    let ids: Vec<_> = members.iter().map(|m| m.event_id.clone()).collect();
    let pdus = state.rooms.load_pdus(&ids).await?;
    let mut joined = serde_json::Map::new();
    for member in members {
        #[derive(serde::Deserialize, Default)]
        struct Profile {
            displayname: Option<String>,
            avatar_url: Option<String>,
        }
        let profile: Profile = pdus
            .get(&member.event_id)
            .and_then(|p| serde_json::from_str(p.content().get()).ok())
            .unwrap_or_default();
        // Both keys are written, null when unset: some clients index them without checking.
        joined.insert(
            member.user_id.to_string(),
            json!({"display_name": profile.displayname, "avatar_url": profile.avatar_url}),
        );
    }
    Ok(Json(json!({ "joined": joined })))
}
