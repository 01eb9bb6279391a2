//! `POST /_matrix/client/v3/createRoom` — create a room with a preset and initial state.
//! <https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3createroom>

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use hearth_rooms::{EventDraft, NewRoom, Preset};
use ruma::api::client::room::{
    Visibility,
    create_room::v3::{self as endpoint, RoomPreset},
};
use ruma::api::error::ErrorKind;

use crate::extract::Ruma;
use crate::rate_limit::RateKey;
use crate::ruma_glue::{RumaResponse, route as route_endpoint};
use crate::{ApiError, ApiState};

pub(crate) fn route(router: Router<ApiState>) -> Router<ApiState> {
    route_endpoint::<endpoint::Request, _, _>(router, handler)
}

fn bad(kind: ErrorKind, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, kind, message)
}

fn object(
    raw: &serde_json::value::RawValue,
    what: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    serde_json::from_str(raw.get())
        .map_err(|_| bad(ErrorKind::BadJson, format!("{what} must be an object")))
}

async fn handler(
    State(state): State<ApiState>,
    request: Ruma<endpoint::Request>,
) -> Result<RumaResponse<endpoint::Response>, ApiError> {
    let creator = request.caller()?.user_id.clone();
    state.rate_limits.send.check(RateKey::user(&creator))?;
    let body = request.body;
    let version = body
        .room_version
        .clone()
        .unwrap_or_else(|| state.default_room_version.clone());
    if version.rules().is_none() {
        return Err(bad(
            ErrorKind::UnsupportedRoomVersion,
            format!("room version {version} is not supported"),
        ));
    }
    let preset = match (&body.preset, &body.visibility) {
        (Some(RoomPreset::PublicChat), _) => Preset::PublicChat,
        (Some(RoomPreset::TrustedPrivateChat), _) => Preset::TrustedPrivateChat,
        (Some(RoomPreset::PrivateChat), _) => Preset::PrivateChat,
        (Some(other), _) => {
            return Err(bad(
                ErrorKind::InvalidParam,
                format!("unknown preset {}", other.as_str()),
            ));
        }
        (None, Visibility::Public) => Preset::PublicChat,
        (None, _) => Preset::PrivateChat,
    };
    let mut spec = NewRoom::new(creator, version, preset);
    // The creator's join carries their profile, like any other join.
    if let Some(profile) = state.rooms.store().profile(&spec.creator).await? {
        crate::client::profile::apply_to_member_content(&profile, &mut spec.creator_join_content);
    }
    if let Some(content) = &body.creation_content {
        spec.creation_content = object(content.json(), "creation_content")?;
        // The server decides these.
        for key in ["creator", "room_version"] {
            spec.creation_content.remove(key);
        }
    }
    if let Some(levels) = &body.power_level_content_override {
        spec.power_level_override = Some(object(levels.json(), "power_level_content_override")?);
    }
    for raw in &body.initial_state {
        #[derive(serde::Deserialize)]
        struct Initial {
            #[serde(rename = "type")]
            kind: String,
            #[serde(default)]
            state_key: String,
            content: serde_json::Value,
        }
        let event: Initial = serde_json::from_str(raw.json().get())
            .map_err(|e| bad(ErrorKind::BadJson, format!("initial_state: {e}")))?;
        spec.initial_state.push(EventDraft::state(
            event.kind.as_str(),
            event.state_key,
            event.content,
        ));
    }
    spec.name = body.name.clone();
    spec.topic = body.topic.clone();
    spec.invite = body.invite.clone();
    spec.is_direct = body.is_direct;
    let alias = match &body.room_alias_name {
        Some(name) => {
            let alias = ruma::RoomAliasId::parse(format!("#{name}:{}", state.server_name))
                .map_err(|e| bad(ErrorKind::InvalidParam, format!("room_alias_name: {e}")))?;
            if state.rooms.store().alias(&alias).await?.is_some() {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    ErrorKind::RoomInUse,
                    "this alias is taken",
                ));
            }
            Some(alias)
        }
        None => None,
    };
    spec.canonical_alias = alias.clone();
    let creator = spec.creator.clone();
    let room = state.rooms.create_room_with(spec).await?;
    let store = state.rooms.store();
    if let Some(alias) = &alias {
        store.create_alias(alias, &room, &creator).await?;
    }
    if body.visibility == Visibility::Public {
        store.set_published(&room, true).await?;
    }
    Ok(RumaResponse(endpoint::Response::new(room)))
}
