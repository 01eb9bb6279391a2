//! HTTP routers for the Matrix APIs. Handlers live one endpoint per file, named after their ruma
//! endpoint; paths come from ruma's metadata; every error leaves through [`ApiError`].

mod client;
mod error;
mod key;
mod ruma_glue;

use std::sync::Arc;

use axum::Router;
use hearth_keys::SigningKey;

pub use error::ApiError;

/// What the handlers read. Built by the binary from the services it started.
#[derive(Clone, Debug)]
pub struct ApiState {
    pub key: Arc<SigningKey>,
}

/// The client-facing router: client-server API discovery and the server key endpoint.
pub fn router(state: ApiState) -> Router {
    let router = Router::new();
    let router = client::discovery::get_supported_versions::route(router);
    let router = key::get_server_keys::route(router);
    router
        .fallback(error::unrecognized)
        .method_not_allowed_fallback(error::method_not_allowed)
        .with_state(state)
}
