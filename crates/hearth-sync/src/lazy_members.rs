//! Lazy-loaded members: which member events each device has been sent, so that an incremental
//! sync can leave out the redundant ones, as the spec's "Lazy-loading room members" lets a
//! server do (unless the filter sets `include_redundant_members`).
//!
//! The race: a response can be lost on its way to the client, which then syncs again from its
//! older token. So a member event counts as known to the device only if it went out in a
//! response whose `next_batch` the device has since synced from (its `since` is at or after the
//! position recorded with it); a retried sync gets the member again.
//!
//! Bounded: the record starts over when full, and a forgotten member is merely sent again.

use ruma::{EventId, OwnedDeviceId, OwnedEventId, OwnedRoomId, OwnedUserId, RoomId};

use crate::SyncRequest;
use crate::bounded::Bounded;

/// Member events remembered across all devices (about 200 bytes each).
const CAPACITY: usize = 50_000;

/// (syncing user, their device, room, member's user id).
type Key = (OwnedUserId, OwnedDeviceId, OwnedRoomId, String);

#[derive(Debug, Clone)]
pub(crate) struct SentMembers {
    /// The member event sent, and the stream position of the response that carried it.
    sent: Bounded<Key, (OwnedEventId, i64)>,
}

impl Default for SentMembers {
    fn default() -> Self {
        Self {
            sent: Bounded::new(CAPACITY),
        }
    }
}

fn key(request: &SyncRequest, room: &RoomId, member: &str) -> Key {
    (
        request.user.clone(),
        request.device.clone(),
        room.to_owned(),
        member.to_owned(),
    )
}

impl SentMembers {
    /// Whether the requesting device certainly has `event` as `member`'s member event.
    pub(crate) fn known(
        &self,
        request: &SyncRequest,
        room: &RoomId,
        member: &str,
        event: &EventId,
    ) -> bool {
        let Some(since) = request.since else {
            return false;
        };
        self.sent
            .get(&key(request, room, member))
            .is_some_and(|(sent, at)| *sent == *event && at <= since.events)
    }

    /// `event` goes out as `member`'s member event in a response reaching position `at`.
    pub(crate) fn record(
        &self,
        request: &SyncRequest,
        room: &RoomId,
        member: &str,
        event: OwnedEventId,
        at: i64,
    ) {
        self.sent.put(key(request, room, member), (event, at));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use ruma::{device_id, event_id, room_id, user_id};

    use super::*;
    use crate::{SyncFilter, SyncToken};

    fn request(since: Option<i64>) -> SyncRequest {
        SyncRequest {
            user: user_id!("@a:x").to_owned(),
            device: device_id!("D").to_owned(),
            since: since.map(|events| SyncToken {
                events,
                ..SyncToken::default()
            }),
            timeout: Duration::ZERO,
            full_state: false,
            filter: SyncFilter::default(),
            set_presence: ruma::presence::PresenceState::Online,
        }
    }

    #[test]
    fn known_only_once_the_device_synced_past_the_response() {
        let sent = SentMembers::default();
        let room = room_id!("!r:x");
        let event = event_id!("$m");
        sent.record(&request(None), room, "@b:x", event.to_owned(), 10);
        // The initial sync knows nothing; a retry from before the response gets it again.
        assert!(!sent.known(&request(None), room, "@b:x", event));
        assert!(!sent.known(&request(Some(9)), room, "@b:x", event));
        assert!(sent.known(&request(Some(10)), room, "@b:x", event));
        // Another member event, member, room or device is not known.
        assert!(!sent.known(&request(Some(10)), room, "@b:x", event_id!("$n")));
        assert!(!sent.known(&request(Some(10)), room, "@c:x", event));
        assert!(!sent.known(&request(Some(10)), room_id!("!s:x"), "@b:x", event));
        let mut other = request(Some(10));
        other.device = device_id!("E").to_owned();
        assert!(!sent.known(&other, room, "@b:x", event));
    }
}
