//! `GET /_matrix/client/v3/directory/list/room/{roomId}` — is the room in the directory?
//! <https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3directorylistroomroomid>

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use ruma::api::client::directory::get_room_visibility::v3 as endpoint;
use ruma::api::client::room::Visibility;
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
    let room = &request.body.room_id;
    let store = state.rooms.store();
    if store.room_head(room).await?.is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorKind::NotFound,
            "unknown room",
        ));
    }
    let visibility = if store.is_published(room).await? {
        Visibility::Public
    } else {
        Visibility::Private
    };
    Ok(RumaResponse(endpoint::Response::new(visibility)))
}
