//! `GET /_matrix/client/versions` — the spec versions and unstable features this server speaks.
//! <https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientversions>

use axum::Router;
use ruma::api::client::discovery::get_supported_versions as endpoint;

use crate::ApiState;
use crate::ruma_glue::{RumaResponse, route as route_endpoint};

/// The client-server spec versions Hearth advertises.
const VERSIONS: &[&str] = &[
    "v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8", "v1.9", "v1.10", "v1.11",
    "v1.12",
];

pub(crate) fn route(router: Router<ApiState>) -> Router<ApiState> {
    route_endpoint::<endpoint::Request, _, _>(router, handler)
}

/// The unstable features Hearth serves, by the name clients look for.
const UNSTABLE_FEATURES: &[&str] = &[
    // Simplified sliding sync (MSC4186), which Element X requires.
    "org.matrix.simplified_msc3575",
    // Dehydrated devices (MSC3814), the unstable endpoints matrix-sdk calls.
    "org.matrix.msc3814",
];

async fn handler() -> RumaResponse<endpoint::Response> {
    let mut response = endpoint::Response::new(VERSIONS.iter().map(|v| (*v).to_owned()).collect());
    response.unstable_features = UNSTABLE_FEATURES
        .iter()
        .map(|feature| ((*feature).to_owned(), true))
        .collect();
    RumaResponse(response)
}
