//! `POST /_matrix/client/v3/publicRooms` — the public room directory, searched.
//! <https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3publicrooms>

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use ruma::api::client::directory::get_public_rooms_filtered::v3 as endpoint;
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
    let body = request.body;
    if body
        .server
        .as_ref()
        .is_some_and(|s| *s != state.server_name)
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorKind::NotFound,
            "other servers' directories need federation",
        ));
    }
    let page = super::page(
        &state,
        body.since.as_deref(),
        body.limit,
        body.filter.generic_search_term.as_deref(),
    )
    .await?;
    let mut response = endpoint::Response::new();
    response.chunk = page.chunk;
    response.next_batch = page.next_batch;
    response.prev_batch = page.prev_batch;
    response.total_room_count_estimate = Some(page.total);
    Ok(RumaResponse(response))
}
