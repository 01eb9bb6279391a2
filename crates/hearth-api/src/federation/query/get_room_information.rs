//! `GET /_matrix/federation/v1/query/directory` — the room a local alias names, and servers
//! to join it through.
//! <https://spec.matrix.org/v1.16/server-server-api/#get_matrixfederationv1querydirectory>

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use ruma::api::error::ErrorKind;
use ruma::api::federation::query::get_room_information::v1 as endpoint;

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
    let alias = &request.body.room_alias;
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorKind::NotFound,
            "no room has this alias",
        )
    };
    if alias.server_name() != state.server_name {
        return Err(not_found());
    }
    let (room, _) = state
        .rooms
        .store()
        .alias(alias)
        .await?
        .ok_or_else(not_found)?;
    Ok(RumaResponse(endpoint::Response::new(
        room,
        vec![state.server_name.clone()],
    )))
}
