//! Creating a room the way `POST /createRoom` describes: the create event, the creator's join,
//! power levels, the preset's rules, the caller's initial state, name, topic, then invites —
//! all through the one append pipeline.

use ruma::events::TimelineEventType;
use ruma::{OwnedRoomId, OwnedUserId, RoomVersionId, UserId};
use serde_json::{Map, Value, json};

use crate::{Append, EventDraft, RoomError, Rooms};

/// The presets of `createRoom`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// Invite-only, shared history, guests may join.
    PrivateChat,
    /// Like `PrivateChat`, and every invitee gets the creator's power.
    TrustedPrivateChat,
    /// Anyone may join, shared history, no guests.
    PublicChat,
}

/// Everything `createRoom` can ask for.
#[derive(Debug, Clone)]
pub struct NewRoom {
    pub creator: OwnedUserId,
    pub version: RoomVersionId,
    pub preset: Preset,
    /// Extra `m.room.create` content (`m.federate`, `type`, `additional_creators`...).
    pub creation_content: Map<String, Value>,
    /// Merged over the default power levels.
    pub power_level_override: Option<Map<String, Value>>,
    pub initial_state: Vec<EventDraft>,
    pub name: Option<String>,
    pub topic: Option<String>,
    pub invite: Vec<OwnedUserId>,
    pub is_direct: bool,
    /// Extra content for the creator's join event (their `displayname` and `avatar_url`).
    pub creator_join_content: Map<String, Value>,
    /// Sent as `m.room.canonical_alias` right after the power levels.
    pub canonical_alias: Option<ruma::OwnedRoomAliasId>,
    /// The room id, chosen ahead by the caller (an upgrade names the new room in the old room's
    /// tombstone first); only for room versions whose room ids are random.
    pub room_id: Option<OwnedRoomId>,
}

impl NewRoom {
    pub fn new(creator: OwnedUserId, version: RoomVersionId, preset: Preset) -> Self {
        Self {
            creator,
            version,
            preset,
            creation_content: Map::new(),
            power_level_override: None,
            initial_state: Vec::new(),
            name: None,
            topic: None,
            invite: Vec::new(),
            is_direct: false,
            creator_join_content: Map::new(),
            canonical_alias: None,
            room_id: None,
        }
    }
}

/// The power levels a new room starts with.
fn default_power_levels(spec: &NewRoom, creators_are_implicit: bool) -> Map<String, Value> {
    let mut users = Map::new();
    if !creators_are_implicit {
        users.insert(spec.creator.to_string(), json!(100));
    }
    if spec.preset == Preset::TrustedPrivateChat {
        for invitee in &spec.invite {
            users.insert(invitee.to_string(), json!(100));
        }
    }
    let mut levels = json!({
        "users": users,
        "users_default": 0,
        "events": {
            "m.room.name": 50,
            "m.room.avatar": 50,
            "m.room.canonical_alias": 50,
            "m.room.topic": 50,
            "m.room.power_levels": 100,
            "m.room.history_visibility": 100,
            "m.room.tombstone": 100,
            "m.room.server_acl": 100,
            "m.room.encryption": 100
        },
        "events_default": 0,
        "state_default": 50,
        "ban": 50,
        "kick": 50,
        "redact": 50,
        "invite": if spec.preset == Preset::PublicChat { 50 } else { 0 },
        "historical": 100
    });
    if let (Some(over), Some(levels)) = (&spec.power_level_override, levels.as_object_mut()) {
        for (key, value) in over {
            levels.insert(key.clone(), value.clone());
        }
    }
    match levels {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// What the auth rules ask of a room's first power levels, checked up front: levels are
/// integers (numeric strings too before room version 10), `users` maps valid user ids, and from
/// room version 12 the creators are not listed (they outrank every level).
fn check_power_levels(
    levels: &Map<String, Value>,
    spec: &NewRoom,
    rules: &ruma::room_version_rules::AuthorizationRules,
) -> Result<(), RoomError> {
    let bad = |what: String| RoomError::Invalid(format!("power_level_content_override: {what}"));
    let level = |value: &Value| match value {
        Value::Number(n) => n.as_i64().is_some_and(|n| n.unsigned_abs() < 1 << 53),
        Value::String(s) if !rules.integer_power_levels => s.trim().parse::<i64>().is_ok(),
        _ => false,
    };
    for key in [
        "ban",
        "events_default",
        "invite",
        "kick",
        "redact",
        "state_default",
        "users_default",
    ] {
        if let Some(value) = levels.get(key)
            && !level(value)
        {
            return Err(bad(format!("{key} must be an integer")));
        }
    }
    for map in ["events", "notifications", "users"] {
        let Some(value) = levels.get(map) else {
            continue;
        };
        let Some(entries) = value.as_object() else {
            return Err(bad(format!("{map} must be an object")));
        };
        for (key, value) in entries {
            if !level(value) {
                return Err(bad(format!("{map}.{key} must be an integer")));
            }
            if map == "users" && <&UserId>::try_from(key.as_str()).is_err() {
                return Err(bad(format!("{key:?} in users is not a user id")));
            }
        }
    }
    if rules.explicitly_privilege_room_creators
        && let Some(users) = levels.get("users").and_then(Value::as_object)
    {
        let extra = spec
            .creation_content
            .get("additional_creators")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str);
        for creator in std::iter::once(spec.creator.as_str()).chain(extra) {
            if users.contains_key(creator) {
                return Err(bad(format!(
                    "{creator} is a creator of the room and cannot be given a power level"
                )));
            }
        }
    }
    Ok(())
}

impl Rooms {
    /// Create a room with its initial state; returns the room id once the room is durable. The
    /// create event and every initial event commit together (a genesis batch): an event that
    /// is refused refuses the room, and nothing of it is stored.
    pub async fn create_room_with(&self, spec: NewRoom) -> Result<OwnedRoomId, RoomError> {
        let rules = spec
            .version
            .rules()
            .ok_or_else(|| RoomError::UnsupportedVersion(spec.version.clone()))?;
        let levels = default_power_levels(
            &spec,
            rules.authorization.explicitly_privilege_room_creators,
        );
        // Refused with a clear message before anything is built.
        check_power_levels(&levels, &spec, &rules.authorization)?;
        let creator: &UserId = &spec.creator;
        let mut drafts = Vec::new();
        let mut join = spec.creator_join_content.clone();
        join.insert("membership".into(), json!("join"));
        drafts.push(EventDraft::state(
            TimelineEventType::RoomMember,
            creator.as_str(),
            Value::Object(join),
        ));
        drafts.push(EventDraft::state(
            TimelineEventType::RoomPowerLevels,
            "",
            Value::Object(levels),
        ));
        if let Some(alias) = &spec.canonical_alias {
            drafts.push(EventDraft::state(
                TimelineEventType::RoomCanonicalAlias,
                "",
                json!({"alias": alias}),
            ));
        }
        let (join_rule, guests) = match spec.preset {
            Preset::PublicChat => ("public", "forbidden"),
            Preset::PrivateChat | Preset::TrustedPrivateChat => ("invite", "can_join"),
        };
        drafts.push(EventDraft::state(
            TimelineEventType::RoomJoinRules,
            "",
            json!({"join_rule": join_rule}),
        ));
        drafts.push(EventDraft::state(
            TimelineEventType::RoomHistoryVisibility,
            "",
            json!({"history_visibility": "shared"}),
        ));
        drafts.push(EventDraft::state(
            TimelineEventType::RoomGuestAccess,
            "",
            json!({"guest_access": guests}),
        ));
        drafts.extend(spec.initial_state.iter().cloned());
        if let Some(name) = &spec.name {
            drafts.push(EventDraft::state(
                TimelineEventType::RoomName,
                "",
                json!({"name": name}),
            ));
        }
        if let Some(topic) = &spec.topic {
            drafts.push(EventDraft::state(
                TimelineEventType::RoomTopic,
                "",
                json!({"topic": topic}),
            ));
        }
        for invitee in &spec.invite {
            let mut content = json!({"membership": "invite"});
            if spec.is_direct {
                content["is_direct"] = json!(true);
            }
            drafts.push(EventDraft::state(
                TimelineEventType::RoomMember,
                invitee.as_str(),
                content,
            ));
        }
        let initial: Vec<Append> = drafts
            .into_iter()
            .map(|draft| Append {
                sender: creator.to_owned(),
                draft,
                txn: None,
            })
            .collect();
        let (room, _) = self
            .create_room_as(
                &spec.version,
                creator,
                spec.creation_content.clone(),
                spec.room_id.as_deref(),
                &initial,
            )
            .await?;
        Ok(room)
    }
}
