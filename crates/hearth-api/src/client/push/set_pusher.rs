//! `POST /_matrix/client/v3/pushers/set` — create, replace (`append: false` also takes the
//! app's push key away from other users) or delete (`kind: null`) a pusher. Pushers are stored
//! and listed; delivering to push gateways comes with push notifications.
//! <https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3pushersset>

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use ruma::api::client::push::PusherKind;
use ruma::api::client::push::set_pusher::v3::{self as endpoint, PusherAction};
use ruma::api::error::ErrorKind;

use crate::extract::Ruma;
use crate::rate_limit::RateKey;
use crate::ruma_glue::{RumaResponse, route as route_endpoint};
use crate::{ApiError, ApiState};

/// The path every push gateway serves (the spec requires it of `data.url`).
const NOTIFY_PATH: &str = "/_matrix/push/v1/notify";

pub(crate) fn route(router: Router<ApiState>) -> Router<ApiState> {
    route_endpoint::<endpoint::Request, _, _>(router, handler)
}

fn invalid(kind: ErrorKind, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, kind, message)
}

async fn handler(
    State(state): State<ApiState>,
    request: Ruma<endpoint::Request>,
) -> Result<RumaResponse<endpoint::Response>, ApiError> {
    let caller = request.caller()?.clone();
    state
        .rate_limits
        .settings
        .check(RateKey::user(&caller.user_id))?;
    let store = state.rooms.store();
    match request.body.action {
        PusherAction::Delete(ids) => {
            store
                .delete_pusher(&caller.user_id, &ids.app_id, &ids.pushkey)
                .await?;
        }
        PusherAction::Post(post) => {
            let pusher = post.pusher;
            if pusher.ids.app_id.len() > 64 || pusher.ids.pushkey.len() > 512 {
                return Err(invalid(
                    ErrorKind::InvalidParam,
                    "app_id may have 64 bytes and pushkey 512 at most",
                ));
            }
            match &pusher.kind {
                PusherKind::Http(http) => check_gateway(&http.url)?,
                PusherKind::Email(_) => {
                    return Err(invalid(
                        ErrorKind::ThreepidNotFound,
                        "email pushers need an email address bound to the account; this \
                         server binds none",
                    ));
                }
                _ => {
                    return Err(invalid(
                        ErrorKind::InvalidParam,
                        "kind must be http (or email, or null to delete)",
                    ));
                }
            }
            let json = serde_json::to_string(&pusher).map_err(ApiError::internal)?;
            store
                .set_pusher(
                    hearth_store::NewPusher {
                        user: &caller.user_id,
                        device: &caller.device_id,
                        app_id: &pusher.ids.app_id,
                        pushkey: &pusher.ids.pushkey,
                        json: &json,
                    },
                    post.append,
                )
                .await?;
        }
        _ => return Err(invalid(ErrorKind::InvalidParam, "unknown pusher action")),
    }
    Ok(RumaResponse(endpoint::Response::new()))
}

/// A push gateway URL: absolute http(s), with the notify path the spec requires.
fn check_gateway(url: &str) -> Result<(), ApiError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| invalid(ErrorKind::InvalidParam, "data.url must be an http(s) URL"))?;
    let path = rest.find('/').map_or("", |at| &rest[at..]);
    let path = path.split(['?', '#']).next().unwrap_or_default();
    if rest.starts_with('/') || path != NOTIFY_PATH {
        return Err(invalid(
            ErrorKind::InvalidParam,
            format!("data.url must be a push gateway URL ending in {NOTIFY_PATH}"),
        ));
    }
    Ok(())
}
