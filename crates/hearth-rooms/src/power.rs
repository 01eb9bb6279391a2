//! Power levels as the client-server API needs them (who may redact what): read from a room's
//! state, with the spec's defaults and room version 12's all-powerful creators.

use std::sync::Arc;

use ruma::UserId;
use ruma::events::StateEventType;
use ruma::room_version_rules::AuthorizationRules;
use serde_json::Value;

use crate::Pdu;

/// A power level; creators in room version 12 rank above every number.
pub const CREATOR_POWER: i64 = i64::MAX;

fn int(value: &Value) -> Option<i64> {
    // Before room version 10 levels may be numeric strings.
    value
        .as_i64()
        .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
}

/// Reads power from a room state.
pub struct Power {
    levels: Option<Value>,
    creators: Vec<String>,
    explicit_creators: bool,
}

impl Power {
    pub fn from_state(
        rules: &AuthorizationRules,
        get: impl Fn(&(StateEventType, String)) -> Option<Arc<Pdu>>,
    ) -> Self {
        let levels =
            get(&(StateEventType::RoomPowerLevels, String::new())).map(|p| p.content_json());
        let create = get(&(StateEventType::RoomCreate, String::new()));
        let mut creators = Vec::new();
        if let Some(create) = &create {
            let content = create.content_json();
            if rules.use_room_create_sender {
                creators.push(create.sender().to_string());
            } else if let Some(creator) = content.get("creator").and_then(Value::as_str) {
                creators.push(creator.to_owned());
            }
            if rules.additional_room_creators
                && let Some(extra) = content.get("additional_creators").and_then(Value::as_array)
            {
                creators.extend(extra.iter().filter_map(Value::as_str).map(str::to_owned));
            }
        }
        Self {
            levels,
            creators,
            explicit_creators: rules.explicitly_privilege_room_creators,
        }
    }

    /// The user's power level.
    pub fn user(&self, user: &UserId) -> i64 {
        let is_creator = self.creators.iter().any(|c| c == user.as_str());
        if self.explicit_creators && is_creator {
            return CREATOR_POWER;
        }
        match &self.levels {
            Some(levels) => levels
                .get("users")
                .and_then(|u| u.get(user.as_str()))
                .and_then(int)
                .or_else(|| levels.get("users_default").and_then(int))
                .unwrap_or(0),
            // Without a power levels event the creator has 100, everyone else 0.
            None if is_creator => 100,
            None => 0,
        }
    }

    /// The level needed to send a state event of this type.
    pub fn state_event(&self, kind: &str) -> i64 {
        match &self.levels {
            Some(levels) => levels
                .get("events")
                .and_then(|e| e.get(kind))
                .and_then(int)
                .or_else(|| levels.get("state_default").and_then(int))
                .unwrap_or(50),
            // Without a power levels event anyone may send state.
            None => 0,
        }
    }

    /// A top-level level such as `redact`, `kick` or `ban` (default 50) or `invite` (default 0).
    pub fn action(&self, name: &str) -> i64 {
        let default = if name == "invite" { 0 } else { 50 };
        self.levels
            .as_ref()
            .and_then(|l| l.get(name))
            .and_then(int)
            .unwrap_or(default)
    }
}
