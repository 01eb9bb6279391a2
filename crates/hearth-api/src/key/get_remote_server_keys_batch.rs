//! `POST /_matrix/key/v2/query` — the notary's copy of several servers' keys, countersigned.
//! Answers about this server and its partners only (never fetching for a stranger), at most
//! [`super::MAX_NOTARY_SERVERS`] servers a request.
//! <https://spec.matrix.org/v1.16/server-server-api/#post_matrixkeyv2query>

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use ruma::api::error::ErrorKind;
use ruma::api::federation::discovery::get_remote_server_keys_batch::v2 as endpoint;

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
    if request.body.server_keys.len() > super::MAX_NOTARY_SERVERS {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorKind::InvalidParam,
            format!("at most {} servers a request", super::MAX_NOTARY_SERVERS),
        ));
    }
    let mut server_keys = Vec::new();
    for (server, criteria) in &request.body.server_keys {
        // The strictest of the criteria given for the server's keys.
        let minimum = criteria
            .values()
            .filter_map(|c| c.minimum_valid_until_ts)
            .map(|ts| i64::try_from(u64::from(ts.get())).unwrap_or(i64::MAX))
            .max();
        if let Some(keys) = super::notarised(&state, server, minimum).await? {
            server_keys.push(keys);
        }
    }
    Ok(RumaResponse(endpoint::Response::new(server_keys)))
}
