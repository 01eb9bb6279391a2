//! `GET /_matrix/client/v3/capabilities` — what this server lets the user do.
//! <https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3capabilities>

use std::collections::BTreeMap;

use axum::extract::State;
use axum::{Json, Router};
use ruma::api::client::discovery::get_capabilities::v3::{
    self as endpoint, Capabilities, RoomVersionStability, RoomVersionsCapability,
    ThirdPartyIdChangesCapability,
};
use serde_json::{Value, json};

use crate::extract::Ruma;
use crate::ruma_glue::route as route_endpoint;
use crate::{ApiError, ApiState};

use hearth_rooms::ROOM_VERSIONS;

pub(crate) fn route(router: Router<ApiState>) -> Router<ApiState> {
    route_endpoint::<endpoint::Request, _, _>(router, handler)
}

async fn handler(
    State(state): State<ApiState>,
    request: Ruma<endpoint::Request>,
) -> Result<Json<Value>, ApiError> {
    request.caller()?;
    let available: BTreeMap<_, _> = ROOM_VERSIONS
        .iter()
        .filter(|version| version.rules().is_some())
        .map(|version| (version.clone(), RoomVersionStability::Stable))
        .collect();
    let mut capabilities = Capabilities::new();
    capabilities.room_versions =
        RoomVersionsCapability::new(state.default_room_version.clone(), available);
    // No third-party identifiers (email, phone) are kept.
    capabilities.thirdparty_id_changes = ThirdPartyIdChangesCapability::new(false);
    let mut body = serde_json::to_value(&capabilities).map_err(ApiError::internal)?;
    // ruma leaves out capabilities at their default (enabled); say so explicitly, as clients
    // written against other servers look for the keys.
    if let Some(body) = body.as_object_mut() {
        for key in ["m.change_password", "m.set_displayname", "m.set_avatar_url"] {
            body.insert(key.to_owned(), json!({ "enabled": true }));
        }
    }
    Ok(Json(json!({ "capabilities": body })))
}
