//! `GET /_matrix/client/v3/thirdparty/protocols` — the third-party protocols bridged to this
//! server: none until application services arrive, which is an empty object (Element Web asks
//! for it at start and shows an error on anything else).
//! <https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3thirdpartyprotocols>

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::State;
use ruma::api::client::thirdparty::get_protocols::v3 as endpoint;

use crate::extract::Ruma;
use crate::ruma_glue::{RumaResponse, route as route_endpoint};
use crate::{ApiError, ApiState};

pub(crate) fn route(router: Router<ApiState>) -> Router<ApiState> {
    route_endpoint::<endpoint::Request, _, _>(router, handler)
}

async fn handler(
    State(_state): State<ApiState>,
    request: Ruma<endpoint::Request>,
) -> Result<RumaResponse<endpoint::Response>, ApiError> {
    request.caller()?;
    Ok(RumaResponse(endpoint::Response::new(BTreeMap::new())))
}
