//! Bump stamps: the stream position of each room's latest event of a kind that moves it up a
//! room list (MSC4186's default bump event types), for sliding sync's recency order.
//!
//! Kept in memory per room: the writer raises a room's stamp as it commits such an event, and
//! a room not in memory yet is read once from the database. Both only ever raise a stamp, so a
//! reader that read the database before a commit cannot lower what the writer set.

use std::collections::HashMap;
use std::sync::Mutex;

use ruma::{OwnedRoomId, RoomId};

use crate::db::with_reader;
use crate::{Store, StoreError};

/// The event types that bump a room (MSC4186's defaults).
pub const BUMP_EVENT_TYPES: &[&str] = &[
    "m.room.create",
    "m.room.message",
    "m.room.encrypted",
    "m.sticker",
    "m.call.invite",
    "m.poll.start",
    "m.beacon_info",
];

/// Rooms whose stamp is in memory; past this the map starts over (a miss costs one query).
const CAPACITY: usize = 200_000;

#[derive(Debug, Default)]
pub(crate) struct BumpStamps(Mutex<HashMap<OwnedRoomId, i64>>);

impl BumpStamps {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<OwnedRoomId, i64>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A committed bump event (only rooms already in memory: the others are read when asked).
    pub(crate) fn raise_known(&self, room: &RoomId, position: i64) {
        if let Some(stamp) = self.lock().get_mut(room) {
            *stamp = (*stamp).max(position);
        }
    }

    fn raise(&self, room: OwnedRoomId, position: i64) -> i64 {
        let mut map = self.lock();
        if map.len() >= CAPACITY && !map.contains_key(&room) {
            map.clear();
        }
        let stamp = map.entry(room).or_insert(position);
        *stamp = (*stamp).max(position);
        *stamp
    }

    fn get(&self, room: &RoomId) -> Option<i64> {
        self.lock().get(room).copied()
    }

    /// Forget every stamp (after a failed commit: what it raised may not be stored).
    pub(crate) fn clear(&self) {
        self.lock().clear();
    }
}

impl Store {
    /// Each room's bump stamp (0 for a room without a bump event).
    pub async fn bump_stamps(
        &self,
        rooms: &[OwnedRoomId],
    ) -> Result<HashMap<OwnedRoomId, i64>, StoreError> {
        let mut out = HashMap::with_capacity(rooms.len());
        for room in rooms {
            let stamp = match self.caches.bump.get(room) {
                Some(stamp) => stamp,
                None => {
                    let found = self.read_bump_stamp(room).await?;
                    self.caches.bump.raise(room.clone(), found)
                }
            };
            out.insert(room.clone(), stamp);
        }
        Ok(out)
    }

    async fn read_bump_stamp(&self, room: &RoomId) -> Result<i64, StoreError> {
        let found: Option<i64> = with_reader!(&self.db, |pool| {
            sqlx::query_scalar(
                "SELECT MAX(stream_ordering) FROM events
                 WHERE room_id = $1 AND event_type IN -- BUMP_EVENT_TYPES
                   ('m.room.create', 'm.room.message', 'm.room.encrypted', 'm.sticker',
                    'm.call.invite', 'm.poll.start', 'm.beacon_info')",
            )
            .bind(room.as_str())
            .fetch_one(pool)
            .await?
        });
        Ok(found.unwrap_or(0))
    }
}
