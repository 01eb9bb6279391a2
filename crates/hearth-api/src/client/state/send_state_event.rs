//! `PUT /_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}` — set room state.
//! <https://spec.matrix.org/v1.16/client-server-api/#put_matrixclientv3roomsroomidstateeventtypestatekey>

use axum::Router;
use axum::extract::State;
use hearth_rooms::{Append, EventDraft};
use ruma::api::client::state::send_state_event::v3 as endpoint;

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
    let sender = request.caller()?.user_id.clone();
    request.require_body()?;
    state.rate_limits.send.check(RateKey::user(&sender))?;
    let body = request.body;
    if body.event_type == ruma::events::StateEventType::RoomMember {
        crate::client::membership::check_membership_rate(&state, &sender, &body.room_id)?;
    }
    let content =
        serde_json::Value::Object(crate::client::user_access::json_object(body.body.json())?);
    if body.event_type == ruma::events::StateEventType::RoomCanonicalAlias {
        crate::client::alias::check_canonical(&state, &body.room_id, &content).await?;
    }
    // The auth rules decide who may set what (membership, power levels); the pipeline runs them.
    let draft = EventDraft::state(
        body.event_type.to_string().as_str(),
        body.state_key.clone(),
        content,
    );
    let appended = state
        .rooms
        .append(
            &body.room_id,
            Append {
                sender,
                draft,
                txn: None,
            },
        )
        .await?;
    if body.event_type == ruma::events::StateEventType::RoomGuestAccess && !appended.duplicate {
        crate::client::membership::remove_guests(&state, &body.room_id).await?;
    }
    Ok(RumaResponse(endpoint::Response::new(appended.event_id)))
}
