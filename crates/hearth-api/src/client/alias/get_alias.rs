//! `GET /_matrix/client/v3/directory/room/{roomAlias}` — the room an alias points at.
//! <https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3directoryroomroomalias>

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use ruma::api::client::alias::get_alias::v3 as endpoint;
use ruma::api::error::ErrorKind;

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
    if alias.server_name() != state.server_name {
        // Asked of the alias's server (a partner; anyone else is refused with 403).
        let (room, servers) = state.federation.query_alias(alias).await?;
        return Ok(RumaResponse(endpoint::Response::new(room, servers)));
    }
    let (room, _) = state.rooms.store().alias(alias).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorKind::NotFound,
            "no room has this alias",
        )
    })?;
    Ok(RumaResponse(endpoint::Response::new(
        room,
        vec![state.server_name.clone()],
    )))
}
