//! `GET /_matrix/key/v2/query/{serverName}` — the notary's copy of one server's keys.
//! Answers about this server and its partners only; for anyone else the list is empty.
//! <https://spec.matrix.org/v1.16/server-server-api/#get_matrixkeyv2queryservername>

use axum::Router;
use axum::extract::State;
use ruma::api::federation::discovery::get_remote_server_keys::v2 as endpoint;

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
    let minimum = i64::try_from(u64::from(request.body.minimum_valid_until_ts.get())).ok();
    let keys = super::notarised(&state, &request.body.server_name, minimum).await?;
    Ok(RumaResponse(endpoint::Response::new(
        keys.into_iter().collect(),
    )))
}
