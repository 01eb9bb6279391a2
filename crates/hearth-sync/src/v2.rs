//! The `/sync` (v2) response as Hearth sends it: the shape of ruma's `sync_events::v3` types,
//! with every section present.
//!
//! NOTSPEC-compatible: the spec makes most of these fields optional, and ruma's types leave
//! empty ones out (`limited: false`, `timeline.events: []`, empty `rooms`). Clients that
//! validate the response against a schema (matrix-nio, and the bots and terminal clients built
//! on it) require them, and Synapse always sends them; so Hearth does too. Events are already
//! in client format (`serde_json::Value`), serialised once with the whole response.

use std::collections::BTreeMap;

use ruma::api::client::sync::sync_events::UnreadNotificationsCount;
use ruma::api::client::sync::sync_events::v3::RoomSummary;
use ruma::{OneTimeKeyAlgorithm, OwnedEventId, OwnedRoomId, OwnedUserId, UInt};
use serde::Serialize;
use serde_json::Value;

use crate::update::RoomUpdate;

/// A `{ "events": [...] }` section.
#[derive(Debug, Default, Serialize)]
pub struct Events<T = Value> {
    pub events: Vec<T>,
}

impl<T> Events<T> {
    fn of(events: Vec<T>) -> Self {
        Self { events }
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

/// The `/sync` response.
#[derive(Debug, Default, Serialize)]
pub struct SyncResponse {
    pub next_batch: String,
    pub rooms: Rooms,
    pub presence: Events,
    pub account_data: Events,
    pub to_device: Events<hearth_e2ee::ToDeviceEvent>,
    pub device_lists: DeviceLists,
    pub device_one_time_keys_count: BTreeMap<OneTimeKeyAlgorithm, UInt>,
    pub device_unused_fallback_key_types: Vec<OneTimeKeyAlgorithm>,
}

impl SyncResponse {
    /// Whether it carries anything a waiting client should be woken for.
    pub(crate) fn has_news(&self) -> bool {
        !(self.rooms.is_empty()
            && self.presence.is_empty()
            && self.account_data.is_empty()
            && self.to_device.is_empty()
            && self.device_lists.changed.is_empty()
            && self.device_lists.left.is_empty())
    }
}

#[derive(Debug, Default, Serialize)]
pub struct Rooms {
    pub join: BTreeMap<OwnedRoomId, JoinedRoom>,
    pub invite: BTreeMap<OwnedRoomId, InvitedRoom>,
    pub leave: BTreeMap<OwnedRoomId, LeftRoom>,
    pub knock: BTreeMap<OwnedRoomId, KnockedRoom>,
}

impl Rooms {
    fn is_empty(&self) -> bool {
        self.join.is_empty()
            && self.invite.is_empty()
            && self.leave.is_empty()
            && self.knock.is_empty()
    }
}

#[derive(Debug, Default, Serialize)]
pub struct DeviceLists {
    pub changed: Vec<OwnedUserId>,
    pub left: Vec<OwnedUserId>,
}

#[derive(Debug, Default, Serialize)]
pub struct Timeline {
    pub events: Vec<Value>,
    pub limited: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prev_batch: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct JoinedRoom {
    pub timeline: Timeline,
    pub state: Events,
    pub ephemeral: Events,
    pub account_data: Events,
    pub summary: RoomSummary,
    pub unread_notifications: UnreadNotificationsCount,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub unread_thread_notifications: BTreeMap<OwnedEventId, UnreadNotificationsCount>,
}

#[derive(Debug, Default, Serialize)]
pub struct LeftRoom {
    pub timeline: Timeline,
    pub state: Events,
    pub account_data: Events,
}

#[derive(Debug, Default, Serialize)]
pub struct InvitedRoom {
    pub invite_state: Events,
}

#[derive(Debug, Default, Serialize)]
pub struct KnockedRoom {
    pub knock_state: Events,
}

impl RoomUpdate {
    fn v2_timeline(&mut self) -> Timeline {
        Timeline {
            events: std::mem::take(&mut self.timeline),
            limited: self.limited,
            prev_batch: self.prev_batch.map(|t| t.to_string()),
        }
    }

    /// As a joined room of `/sync`.
    pub(crate) fn into_v2_joined(mut self) -> JoinedRoom {
        let mut room = JoinedRoom {
            timeline: self.v2_timeline(),
            ..JoinedRoom::default()
        };
        room.ephemeral.events = self.typing_event().into_iter().collect();
        room.ephemeral.events.extend(self.receipts.take());
        room.state = Events::of(self.state);
        room.account_data = Events::of(self.account_data);
        if let Some(summary) = self.summary {
            room.summary.joined_member_count = Some(UInt::new_saturating(summary.joined));
            room.summary.invited_member_count = Some(UInt::new_saturating(summary.invited));
            room.summary.heroes = summary.heroes;
        }
        if let Some(counts) = self.counts {
            room.unread_notifications = counts.room;
            room.unread_thread_notifications = counts.threads;
        }
        room
    }

    /// As a left room of `/sync`.
    pub(crate) fn into_v2_left(mut self) -> LeftRoom {
        LeftRoom {
            timeline: self.v2_timeline(),
            state: Events::of(self.state),
            account_data: Events::of(self.account_data),
        }
    }
}

impl InvitedRoom {
    pub(crate) fn new(stripped: Vec<Value>) -> Self {
        Self {
            invite_state: Events::of(stripped),
        }
    }
}

impl KnockedRoom {
    pub(crate) fn new(stripped: Vec<Value>) -> Self {
        Self {
            knock_state: Events::of(stripped),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The sections schema-validating clients require are there even when empty (matrix-sdk's
    /// parsing of the same responses is what the integration tests run on).
    #[test]
    fn every_section_is_present() {
        let mut response = SyncResponse {
            next_batch: "s1".into(),
            ..SyncResponse::default()
        };
        let room: OwnedRoomId = "!r:h".try_into().unwrap();
        response
            .rooms
            .join
            .insert(room.clone(), RoomUpdate::default().into_v2_joined());
        let json = serde_json::to_value(&response).unwrap();
        for section in ["presence", "account_data", "to_device"] {
            assert_eq!(json[section]["events"], serde_json::json!([]), "{section}");
        }
        for kind in ["join", "invite", "leave", "knock"] {
            assert!(json["rooms"][kind].is_object(), "{kind}");
        }
        let joined = &json["rooms"]["join"]["!r:h"];
        assert_eq!(joined["timeline"]["limited"], false);
        assert_eq!(joined["timeline"]["events"], serde_json::json!([]));
        for section in ["state", "ephemeral", "account_data"] {
            assert_eq!(
                joined[section]["events"],
                serde_json::json!([]),
                "{section}"
            );
        }
    }
}
