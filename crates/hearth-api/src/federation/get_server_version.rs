//! `GET /_matrix/federation/v1/version` — this server's implementation and version.
//! <https://spec.matrix.org/v1.16/server-server-api/#get_matrixfederationv1version>

use axum::Router;
use ruma::api::federation::discovery::get_server_version::v1 as endpoint;

use crate::ruma_glue::{RumaResponse, route as route_endpoint};
use crate::{ApiError, ApiState};

pub(crate) fn route(router: Router<ApiState>) -> Router<ApiState> {
    route_endpoint::<endpoint::Request, _, _>(router, handler)
}

async fn handler() -> Result<RumaResponse<endpoint::Response>, ApiError> {
    let mut server = endpoint::Server::new();
    server.name = Some("Hearth".to_owned());
    server.version = Some(env!("CARGO_PKG_VERSION").to_owned());
    let mut response = endpoint::Response::new();
    response.server = Some(server);
    Ok(RumaResponse(response))
}
