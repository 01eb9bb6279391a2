//! Room upgrades, the way the spec's "Room Upgrades / Server behaviour" describes them: a
//! replacement room whose create event names its predecessor, the transferable state copied
//! over, the old room tombstoned and locked down. Moving local aliases and the directory entry
//! is the caller's part (they are not events).

use ruma::events::{StateEventType, TimelineEventType};
use ruma::{OwnedRoomId, OwnedUserId, RoomId, RoomVersionId, UserId};
use serde_json::{Map, Value, json};

use crate::{Append, CREATOR_POWER, EventDraft, NewRoom, Pdu, Preset, RoomError, Rooms};

/// State copied to the replacement room: the spec's recommended list, plus the canonical alias
/// (the aliases move with the room).
const TRANSFERABLE: &[&str] = &[
    "m.room.server_acl",
    "m.room.encryption",
    "m.room.name",
    "m.room.avatar",
    "m.room.topic",
    "m.room.guest_access",
    "m.room.history_visibility",
    "m.room.join_rules",
    "m.room.canonical_alias",
];

/// What `POST /rooms/{roomId}/upgrade` asks for.
#[derive(Debug, Clone)]
pub struct Upgrade {
    pub room: OwnedRoomId,
    pub user: OwnedUserId,
    pub new_version: RoomVersionId,
    /// Creators besides the upgrader (room version 12 on); never carried over implicitly.
    pub additional_creators: Vec<OwnedUserId>,
    /// Extra content for the upgrader's join in the new room (their profile).
    pub creator_join_content: Map<String, Value>,
}

fn content(pdu: &Pdu) -> Map<String, Value> {
    serde_json::from_str(pdu.content().get()).unwrap_or_default()
}

fn int(value: Option<&Value>) -> Option<i64> {
    value.and_then(|v| {
        v.as_i64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
    })
}

/// The level that lets a user send every state event the copy sends (and ban), as the power
/// levels content has it.
fn needed_level(levels: &Map<String, Value>) -> i64 {
    let events = levels
        .get("events")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|e| e.values())
        .filter_map(|v| int(Some(v)));
    events
        .chain(int(levels.get("state_default")))
        .chain(int(levels.get("ban")))
        .chain([50])
        .max()
        .unwrap_or(50)
}

/// `events_default` and `invite` of the old room raised to `max(50, users_default + 1)`;
/// `None` when they are that high already.
fn locked_down(levels: &Map<String, Value>) -> Option<Map<String, Value>> {
    let users_default = int(levels.get("users_default")).unwrap_or(0);
    let restricted = users_default.saturating_add(1).max(50);
    let mut out = levels.clone();
    let mut changed = false;
    for (key, default) in [("events_default", 0), ("invite", 0)] {
        if int(levels.get(key)).unwrap_or(default) < restricted {
            out.insert(key.into(), restricted.into());
            changed = true;
        }
    }
    changed.then_some(out)
}

/// Change the `users` map of a power levels content.
fn with_users(levels: &mut Map<String, Value>, change: impl FnOnce(&mut Map<String, Value>)) {
    let mut users = match levels.remove("users") {
        Some(Value::Object(users)) => users,
        _ => Map::new(),
    };
    change(&mut users);
    levels.insert("users".into(), Value::Object(users));
}

impl Rooms {
    /// Upgrade a room; returns the replacement room. The upgrader must be joined and have the
    /// power to send `m.room.tombstone`.
    pub async fn upgrade_room(&self, upgrade: Upgrade) -> Result<OwnedRoomId, RoomError> {
        let Upgrade {
            room,
            user,
            new_version,
            additional_creators,
            creator_join_content,
        } = upgrade;
        let rules = new_version
            .rules()
            .ok_or_else(|| RoomError::UnsupportedVersion(new_version.clone()))?;
        let state = self.current_state(&room).await?;
        let get_id = |kind: &str| {
            state
                .get(&(StateEventType::from(kind), String::new()))
                .cloned()
        };
        let member = state
            .get(&crate::member_key(&user))
            .cloned()
            .map(|id| vec![id])
            .unwrap_or_default();
        let joined = self
            .load_pdus(&member)
            .await?
            .values()
            .any(|p| p.membership().as_deref() == Some("join"));
        if !joined {
            return Err(RoomError::Forbidden(format!("{user} is not in {room}")));
        }
        let power = self.power(&room).await?;
        let upgrader_level = power.user(&user);
        if upgrader_level < power.state_event("m.room.tombstone") {
            return Err(RoomError::Forbidden(
                "upgrading needs the power to send m.room.tombstone".into(),
            ));
        }

        let mut wanted: Vec<_> = ["m.room.create", "m.room.power_levels"]
            .iter()
            .chain(TRANSFERABLE)
            .filter_map(|k| get_id(k))
            .collect();
        let bans: Vec<_> = self
            .store()
            .room_members(&room, Some("ban"))
            .await?
            .into_iter()
            .map(|m| m.event_id)
            .collect();
        wanted.extend(bans.iter().cloned());
        let pdus = self.load_pdus(&wanted).await?;
        let old = |kind: &str| get_id(kind).and_then(|id| pdus.get(&id).cloned());

        // Where room ids are random, the new room's id is chosen now and the old room tombstoned
        // first, so that the new room's create event names the tombstone as its predecessor
        // event (the last event of the old room). From room version 12 the room id is the hash
        // of the create event and the predecessor has no event id: the tombstone comes after.
        let chosen = (!rules.authorization.room_create_event_id_as_room_id)
            .then(|| RoomId::new_v1(self.key().server_name()));
        let mut predecessor = json!({ "room_id": room });
        if let Some(new_room) = &chosen {
            let tombstone = self.tombstone(&room, &user, new_room).await?;
            predecessor["event_id"] = tombstone.to_string().into();
        }

        // The create event: predecessor, room type, federation.
        let mut creation = Map::new();
        creation.insert("predecessor".into(), predecessor);
        if let Some(create) = old("m.room.create") {
            let create = content(&create);
            for key in ["type", "m.federate"] {
                if let Some(value) = create.get(key) {
                    creation.insert(key.into(), value.clone());
                }
            }
        }
        if rules.authorization.additional_room_creators && !additional_creators.is_empty() {
            creation.insert("additional_creators".into(), json!(additional_creators));
        }

        // Power levels: the old ones, so that the upgrader can set up the new room.
        let mut levels = old("m.room.power_levels")
            .map(|p| content(&p))
            .unwrap_or_default();
        let needed = needed_level(&levels);
        let (initial_levels, final_levels) =
            if rules.authorization.explicitly_privilege_room_creators {
                // Creators rank above every level and must not be listed.
                with_users(&mut levels, |users| {
                    users.remove(user.as_str());
                    for creator in &additional_creators {
                        users.remove(creator.as_str());
                    }
                });
                (levels, None)
            } else {
                let own = if upgrader_level == CREATOR_POWER {
                    // A creator of a version-12 room moving to an older version: the highest level
                    // the room uses instead.
                    Some(needed.max(100))
                } else {
                    None
                };
                let mut final_levels = levels.clone();
                if let Some(own) = own {
                    with_users(&mut final_levels, |users| {
                        users.insert(user.to_string(), own.into());
                    });
                }
                let current = own.unwrap_or(upgrader_level);
                let mut initial = final_levels.clone();
                if current < needed {
                    // NOTSPEC-compatible: raised for the set-up only, as Synapse does; the old
                    // levels are restored once the state is copied.
                    with_users(&mut initial, |users| {
                        users.insert(user.to_string(), needed.into());
                    });
                    (initial, Some(final_levels))
                } else {
                    (initial, None)
                }
            };

        let public = old("m.room.join_rules")
            .is_some_and(|p| content(&p).get("join_rule") == Some(&json!("public")));
        let preset = if public {
            Preset::PublicChat
        } else {
            Preset::PrivateChat
        };
        let mut spec = NewRoom::new(user.clone(), new_version.clone(), preset);
        spec.creation_content = creation;
        spec.power_level_override = Some(initial_levels);
        spec.creator_join_content = creator_join_content;
        spec.room_id = chosen.clone();
        for kind in TRANSFERABLE {
            if let Some(pdu) = old(kind) {
                spec.initial_state
                    .push(EventDraft::state(*kind, "", Value::Object(content(&pdu))));
            }
        }
        let new_room = match self.create_room_with(spec).await {
            Ok(new_room) => new_room,
            Err(e) => {
                if let Some(new_room) = &chosen {
                    // The tombstone is out and cannot be taken back: say so loudly.
                    tracing::error!(%room, %new_room, error = %e,
                        "upgrade: the old room is tombstoned but its replacement failed");
                }
                return Err(e);
            }
        };

        // Bans carry over, so that a banned user can't walk into the new room.
        for id in &bans {
            let Some(ban) = pdus
                .get(id)
                .filter(|p| p.membership().as_deref() == Some("ban"))
            else {
                continue;
            };
            let Some(target) = ban.state_key() else {
                continue;
            };
            let mut ban_content = json!({ "membership": "ban" });
            if let Some(reason) = content(ban).get("reason") {
                ban_content["reason"] = reason.clone();
            }
            self.send_as(
                &new_room,
                &user,
                EventDraft::state(TimelineEventType::RoomMember, target, ban_content),
            )
            .await?;
        }
        if let Some(levels) = final_levels {
            self.send_as(
                &new_room,
                &user,
                EventDraft::state(
                    TimelineEventType::RoomPowerLevels,
                    "",
                    Value::Object(levels),
                ),
            )
            .await?;
        }

        // The old room: tombstone (unless sent already), the canonical alias gone, then
        // locked down.
        if chosen.is_none() {
            self.tombstone(&room, &user, &new_room).await?;
        }
        if old("m.room.canonical_alias").is_some_and(|p| !content(&p).is_empty()) {
            // "If possible": a user who may tombstone but not edit aliases leaves it.
            self.try_send_as(
                &room,
                &user,
                EventDraft::state(TimelineEventType::RoomCanonicalAlias, "", json!({})),
            )
            .await?;
        }
        let current = self
            .current_state(&room)
            .await?
            .get(&(StateEventType::RoomPowerLevels, String::new()))
            .cloned();
        if let Some(id) = current
            && let Some(pdu) = self.pdu(&id).await?
            && let Some(restricted) = locked_down(&content(&pdu))
        {
            self.try_send_as(
                &room,
                &user,
                EventDraft::state(
                    TimelineEventType::RoomPowerLevels,
                    "",
                    Value::Object(restricted),
                ),
            )
            .await?;
        }
        Ok(new_room)
    }

    /// `m.room.tombstone` in `room`, pointing at `replacement`.
    async fn tombstone(
        &self,
        room: &RoomId,
        user: &UserId,
        replacement: &RoomId,
    ) -> Result<ruma::OwnedEventId, RoomError> {
        let draft = EventDraft::state(
            TimelineEventType::RoomTombstone,
            "",
            json!({
                "body": "This room has been replaced",
                "replacement_room": replacement,
            }),
        );
        let appended = self
            .append(
                room,
                Append {
                    sender: user.to_owned(),
                    draft,
                    txn: None,
                },
            )
            .await?;
        Ok(appended.event_id)
    }

    async fn send_as(
        &self,
        room: &RoomId,
        user: &UserId,
        draft: EventDraft,
    ) -> Result<(), RoomError> {
        self.append(
            room,
            Append {
                sender: user.to_owned(),
                draft,
                txn: None,
            },
        )
        .await
        .map(drop)
    }

    /// [`Rooms::send_as`] where lacking the power is no failure (the spec's "if possible").
    async fn try_send_as(
        &self,
        room: &RoomId,
        user: &UserId,
        draft: EventDraft,
    ) -> Result<(), RoomError> {
        match self.send_as(room, user, draft).await {
            Err(RoomError::Forbidden(reason)) => {
                tracing::info!(%room, %user, %reason, "upgrade: old room left as it was");
                Ok(())
            }
            other => other,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lock_down_raises_events_default_and_invite() {
        let levels = json!({"users_default": 0, "events_default": 0, "invite": 0, "ban": 50});
        let out = locked_down(levels.as_object().unwrap()).unwrap();
        assert_eq!(
            (out["events_default"].clone(), out["invite"].clone()),
            (json!(50), json!(50))
        );
        let levels = json!({"users_default": 60, "events_default": 0});
        let out = locked_down(levels.as_object().unwrap()).unwrap();
        assert_eq!(
            (out["events_default"].clone(), out["invite"].clone()),
            (json!(61), json!(61))
        );
        let levels = json!({"events_default": 100, "invite": 70});
        assert!(locked_down(levels.as_object().unwrap()).is_none());
    }

    #[test]
    fn needed_level_is_the_highest_state_level() {
        let levels = json!({"events": {"m.room.power_levels": 100, "m.room.name": 50},
                            "state_default": 50, "ban": 50});
        assert_eq!(needed_level(levels.as_object().unwrap()), 100);
        assert_eq!(needed_level(&Map::new()), 50);
    }
}
