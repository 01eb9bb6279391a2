//! The one place where ruma endpoints meet axum: routes from ruma metadata, ruma responses to
//! axum responses.

use axum::Router;
use axum::body::Body;
use axum::handler::Handler;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, on};
use ruma::api::path_builder::PathBuilder;
use ruma::api::{Metadata, OutgoingResponse, OutgoingResponseExt};

use crate::{ApiError, ApiState};

/// Route `handler` under the method and every path (stable and legacy) ruma lists for endpoint `E`.
pub(crate) fn route<E, H, T>(router: Router<ApiState>, handler: H) -> Router<ApiState>
where
    E: Metadata,
    H: Handler<T, ApiState>,
    T: 'static,
{
    #[allow(clippy::expect_used)]
    let filter = MethodFilter::try_from(E::METHOD)
        .expect("ruma endpoints use GET, PUT, POST or DELETE, which all have a filter");
    E::PATH_BUILDER.all_paths().fold(router, |router, path| {
        let router = router.route(path, on(filter, handler.clone()));
        // A path ending in a parameter that may be empty (the state key) also answers without
        // it, with and without the trailing slash.
        match path.strip_suffix("/{state_key}") {
            Some(prefix) => router
                .route(prefix, on(filter, handler.clone()))
                .route(&format!("{prefix}/"), on(filter, handler.clone())),
            None => router,
        }
    })
}

/// A ruma response as an axum response.
pub(crate) struct RumaResponse<T>(pub T);

impl<T: OutgoingResponse> IntoResponse for RumaResponse<T> {
    fn into_response(self) -> Response {
        match self.0.try_into_http_response::<Vec<u8>>() {
            Ok(response) => response.map(Body::from).into_response(),
            Err(e) => ApiError::internal(format!("serialising response: {e}")).into_response(),
        }
    }
}
