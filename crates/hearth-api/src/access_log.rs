//! The access log: one line per request at most, so that a busy server does not fill its own
//! disk. Failures (5xx) are logged at `warn`, everything else at `debug` under the target
//! `hearth_api::access` (`logging.level = "info,hearth_api::access=debug"` turns on a full
//! access log). Paths are logged without their query string, which may hold an access token.

use std::time::Duration;

use axum::body::Body;
use http::{Request, Response};
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::TraceLayer;
use tracing::Span;

pub(crate) type Layer = TraceLayer<
    SharedClassifier<ServerErrorsAsFailures>,
    fn(&Request<Body>) -> Span,
    (),
    fn(&Response<Body>, Duration, &Span),
    (),
    (),
    (),
>;

pub(crate) fn layer() -> Layer {
    TraceLayer::new_for_http()
        .make_span_with(span as fn(&Request<Body>) -> Span)
        .on_request(())
        .on_response(line as fn(&Response<Body>, Duration, &Span))
        .on_body_chunk(())
        .on_eos(())
        .on_failure(())
}

fn span(request: &Request<Body>) -> Span {
    tracing::debug_span!(
        target: "hearth_api::access",
        "request",
        method = %request.method(),
        path = %request.uri().path(),
    )
}

fn line(response: &Response<Body>, latency: Duration, _span: &Span) {
    let status = response.status().as_u16();
    let ms = latency.as_millis();
    if response.status().is_server_error() {
        tracing::warn!(target: "hearth_api::access", status, ms, "request failed");
    } else {
        tracing::debug!(target: "hearth_api::access", status, ms, "request");
    }
}
