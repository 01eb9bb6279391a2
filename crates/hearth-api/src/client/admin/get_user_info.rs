//! `GET /_matrix/client/v3/admin/whois/{userId}` — a user's devices and sessions, for server
//! admins and the user themselves. Hearth keeps no connection log (addresses, user agents),
//! so each device has one session with its last-seen time and no connections listed.
//! <https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3adminwhoisuserid>

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Json, Router};
use ruma::api::client::admin::get_user_info::v3 as endpoint;
use ruma::api::error::ErrorKind;
use serde_json::{Map, Value, json};

use crate::extract::Ruma;
use crate::ruma_glue::route as route_endpoint;
use crate::{ApiError, ApiState};

pub(crate) fn route(router: Router<ApiState>) -> Router<ApiState> {
    route_endpoint::<endpoint::Request, _, _>(router, handler)
}

async fn handler(
    State(state): State<ApiState>,
    request: Ruma<endpoint::Request>,
) -> Result<Json<Value>, ApiError> {
    let caller = request.caller()?;
    let user = &request.body.user_id;
    if !caller.is_admin && caller.user_id != *user {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorKind::Forbidden,
            "only server admins may look up other users",
        ));
    }
    let mut devices = Map::new();
    for device in state.accounts.devices(user).await? {
        let mut connection = Map::new();
        if let Some(seen) = device.last_seen_ms {
            connection.insert("last_seen".into(), seen.into());
        }
        let connections = if connection.is_empty() {
            Vec::new()
        } else {
            vec![Value::Object(connection)]
        };
        devices.insert(
            device.device_id.to_string(),
            json!({ "sessions": [{ "connections": connections }] }),
        );
    }
    Ok(Json(json!({ "user_id": user, "devices": devices })))
}
