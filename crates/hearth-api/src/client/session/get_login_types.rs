//! `GET /_matrix/client/v3/login` — the login types this server accepts.
//! <https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3login>

use axum::Router;
use ruma::api::client::session::get_login_types::v3::{
    self as endpoint, LoginType, PasswordLoginType,
};

use crate::ApiState;
use crate::ruma_glue::{RumaResponse, route as route_endpoint};

pub(crate) fn route(router: Router<ApiState>) -> Router<ApiState> {
    route_endpoint::<endpoint::Request, _, _>(router, handler)
}

async fn handler() -> RumaResponse<endpoint::Response> {
    RumaResponse(endpoint::Response::new(vec![LoginType::Password(
        PasswordLoginType::new(),
    )]))
}
