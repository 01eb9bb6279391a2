//! `GET /_matrix/client/v3/rooms/{roomId}/joined_members` — who is in the room, with profiles.
//! <https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3roomsroomidjoined_members>

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::State;
use ruma::api::client::membership::joined_members::v3::{self as endpoint, RoomMember};

use crate::client::room_access::require_joined;
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
    let user = &request.caller()?.user_id;
    let room = &request.body.room_id;
    require_joined(&state.rooms, room, user).await?;
    let members = state.rooms.store().room_members(room, Some("join")).await?;
    let ids: Vec<_> = members.iter().map(|m| m.event_id.clone()).collect();
    let pdus = state.rooms.load_pdus(&ids).await?;
    let mut joined = BTreeMap::new();
    for member in members {
        #[derive(serde::Deserialize, Default)]
        struct Profile {
            displayname: Option<String>,
            avatar_url: Option<ruma::OwnedMxcUri>,
        }
        let profile: Profile = pdus
            .get(&member.event_id)
            .and_then(|p| serde_json::from_str(p.content().get()).ok())
            .unwrap_or_default();
        let mut entry = RoomMember::new();
        entry.display_name = profile.displayname;
        entry.avatar_url = profile.avatar_url;
        joined.insert(member.user_id, entry);
    }
    Ok(RumaResponse(endpoint::Response::new(joined)))
}
