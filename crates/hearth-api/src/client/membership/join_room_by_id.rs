//! `POST /_matrix/client/v3/rooms/{roomId}/join` — join a room on this server.
//! <https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3roomsroomidjoin>

use axum::Router;
use axum::extract::State;
use hearth_rooms::{Append, EventDraft};
use ruma::api::client::membership::join_room_by_id::v3 as endpoint;
use serde_json::json;

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
    let body = request.body;
    let mut content = json!({"membership": "join"});
    if let Some(reason) = &body.reason {
        content["reason"] = reason.clone().into();
    }
    // NOTSPEC: joining a room that lives only on another server needs federation (not built).
    let draft = EventDraft::state("m.room.member", user.as_str(), content);
    state
        .rooms
        .append(
            &body.room_id,
            Append {
                sender: user,
                draft,
                txn: None,
            },
        )
        .await?;
    Ok(RumaResponse(endpoint::Response::new(body.room_id)))
}
