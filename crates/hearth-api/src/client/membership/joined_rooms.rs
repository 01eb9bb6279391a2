//! `GET /_matrix/client/v3/joined_rooms` — the rooms this user is joined to.
//! <https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3joined_rooms>

use axum::Router;
use axum::extract::State;
use ruma::api::client::membership::joined_rooms::v3 as endpoint;

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
    let rooms = state.rooms.store().memberships_of(user).await?;
    let joined = rooms
        .iter()
        .filter(|m| m.membership == "join")
        .map(|m| m.room_id.clone())
        .collect();
    Ok(RumaResponse(endpoint::Response::new(joined)))
}
