//! `GET /_matrix/client/v3/account/whoami` — who owns this access token.
//! <https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3accountwhoami>

use axum::Router;
use ruma::api::client::account::whoami::v3 as endpoint;

use crate::extract::Ruma;
use crate::ruma_glue::{RumaResponse, route as route_endpoint};
use crate::{ApiError, ApiState};

pub(crate) fn route(router: Router<ApiState>) -> Router<ApiState> {
    route_endpoint::<endpoint::Request, _, _>(router, handler)
}

async fn handler(
    request: Ruma<endpoint::Request>,
) -> Result<RumaResponse<endpoint::Response>, ApiError> {
    let caller = request.caller()?;
    let mut response = endpoint::Response::new(caller.user_id.clone(), false);
    response.device_id = Some(caller.device_id.clone());
    Ok(RumaResponse(response))
}
