//! The newest events of the rooms being written to, kept in memory by the event writer.
//!
//! Every `/sync` of a busy room asks for the few events since its token, their transaction ids,
//! redactions and relations; without this, each of those is a query per syncing client per
//! commit. The writer records each committed batch here before it publishes the new stream
//! position, so a room's entry is complete above its `floor`: every event of the room with a
//! position in `(floor, newest]` is in it. Reads outside that window fall through to the
//! database.
//!
//! An event enters only when it is committed, so its entry has seen every later commit: the
//! `has_children` and `redacted` marks are exact ("no relation or redaction targets this event")
//! and spare the relations and redactions queries for most fresh events. Whatever later ingests
//! events whose relations or redactions may already be stored (federation delivers them out of
//! order) must record them with both marks set, and deleting events must drop the room here.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use ruma::{DeviceId, OwnedEventId, OwnedRoomId, RoomId, UserId};

use crate::{RoomBatch, StoredEvent, TxnKey};

/// Events kept per room: more than a `/sync` timeline or an unread-count scan usually needs.
const ROOM_EVENTS: usize = 128;

/// Rooms kept; the one written to longest ago goes first.
const ROOMS: usize = 256;

/// PDU bytes kept over all rooms (events may be up to 64 KiB each): rooms written to longest
/// ago go first when there are more.
const BYTES: usize = 32 * 1024 * 1024;

#[derive(Debug)]
struct Entry {
    event: StoredEvent,
    txn: Option<TxnKey>,
    has_children: bool,
    redacted: bool,
}

#[derive(Debug)]
struct RoomEvents {
    /// Complete above this position.
    floor: i64,
    /// Ascending stream positions.
    events: VecDeque<Entry>,
    /// When the room was last written to (a counter), for eviction.
    written: u64,
}

impl RoomEvents {
    fn position_of(&self, stream: i64) -> Option<usize> {
        self.events
            .binary_search_by_key(&stream, |e| e.event.stream_ordering)
            .ok()
    }
}

#[derive(Debug, Default)]
struct Inner {
    rooms: HashMap<OwnedRoomId, RoomEvents>,
    /// Where each kept event is: its room and stream position.
    by_id: HashMap<OwnedEventId, (OwnedRoomId, i64)>,
    clock: u64,
    /// PDU bytes kept.
    bytes: usize,
}

impl Inner {
    fn entry_mut(&mut self, id: &OwnedEventId) -> Option<&mut Entry> {
        let (room, stream) = self.by_id.get(id)?;
        let room = self.rooms.get_mut(room)?;
        let at = room.position_of(*stream)?;
        room.events.get_mut(at)
    }

    fn entry(&self, id: &OwnedEventId) -> Option<&Entry> {
        let (room, stream) = self.by_id.get(id)?;
        let room = self.rooms.get(room)?;
        room.events.get(room.position_of(*stream)?)
    }

    fn evict_room(&mut self, room: &RoomId) {
        if let Some(gone) = self.rooms.remove(room) {
            for entry in gone.events {
                self.forget(&entry);
            }
        }
    }

    fn forget(&mut self, entry: &Entry) {
        self.by_id.remove(&entry.event.event_id);
        self.bytes = self.bytes.saturating_sub(entry.event.json.len());
    }

    /// The room written to longest ago, other than `except`.
    fn stalest(&self, except: &RoomId) -> Option<OwnedRoomId> {
        self.rooms
            .iter()
            .filter(|(id, _)| *id != except)
            .min_by_key(|(_, r)| r.written)
            .map(|(id, _)| id.clone())
    }
}

/// Which mark a caller is asking about.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Mark {
    /// Some relation names the event as its parent.
    Children,
    /// Some redaction targets the event.
    Redacted,
}

#[derive(Debug, Default)]
pub(crate) struct Recent {
    inner: Mutex<Inner>,
}

impl Recent {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A committed batch with the positions it was given. Call in commit order, before the
    /// positions are published.
    pub(crate) fn record(&self, batch: &RoomBatch, positions: &[i64]) {
        let Some(&first) = positions.first() else {
            return;
        };
        let mut inner = self.lock();
        inner.clock += 1;
        let clock = inner.clock;
        if !inner.rooms.contains_key(&batch.room_id)
            && inner.rooms.len() >= ROOMS
            && let Some(stalest) = inner.stalest(&batch.room_id)
        {
            inner.evict_room(&stalest);
        }
        let room = inner
            .rooms
            .entry(batch.room_id.clone())
            .or_insert_with(|| RoomEvents {
                // Nothing of the room is known below this batch.
                floor: first - 1,
                events: VecDeque::new(),
                written: clock,
            });
        room.written = clock;
        for (event, &stream) in batch.events.iter().zip(positions) {
            room.events.push_back(Entry {
                event: StoredEvent {
                    stream_ordering: stream,
                    room_version: batch.room_version.clone(),
                    event_id: event.event_id.clone(),
                    room_id: batch.room_id.clone(),
                    depth: event.depth,
                    state_group_before: event.state_group_before,
                    state_group_after: event.state_group_after,
                    json: event.json.clone(),
                },
                txn: event.txn.clone(),
                has_children: false,
                redacted: false,
            });
        }
        // Index the whole batch before trimming, so that what a large batch trims again
        // leaves the index too.
        for (event, &stream) in batch.events.iter().zip(positions) {
            inner
                .by_id
                .insert(event.event_id.clone(), (batch.room_id.clone(), stream));
            inner.bytes += event.json.len();
        }
        let mut dropped = Vec::new();
        if let Some(room) = inner.rooms.get_mut(&batch.room_id) {
            while room.events.len() > ROOM_EVENTS {
                if let Some(old) = room.events.pop_front() {
                    room.floor = old.event.stream_ordering;
                    dropped.push(old);
                }
            }
        }
        for old in &dropped {
            inner.forget(old);
        }
        while inner.bytes > BYTES {
            match inner.stalest(&batch.room_id) {
                Some(stalest) => inner.evict_room(&stalest),
                None => break,
            }
        }
        for relation in &batch.relations {
            if let Some(parent) = inner.entry_mut(&relation.relates_to) {
                parent.has_children = true;
            }
        }
        for (redacts, _) in &batch.redactions {
            if let Some(target) = inner.entry_mut(redacts) {
                target.redacted = true;
            }
        }
    }

    /// Drop everything kept.
    pub(crate) fn clear(&self) {
        *self.lock() = Inner::default();
    }

    /// Drop what is kept of a room: after a failed commit, whether its last batch is stored is
    /// for the database to say.
    pub(crate) fn forget_room(&self, room: &RoomId) {
        self.lock().evict_room(room);
    }

    /// Up to `limit` events with `after < position <= upto`, newest first, if the kept events
    /// answer that completely.
    pub(crate) fn backwards(
        &self,
        room: &RoomId,
        after: i64,
        upto: i64,
        limit: i64,
    ) -> Option<Vec<StoredEvent>> {
        let limit = usize::try_from(limit).ok().filter(|l| *l > 0)?;
        let inner = self.lock();
        let kept = inner.rooms.get(room)?;
        let found: Vec<StoredEvent> = kept
            .events
            .iter()
            .rev()
            .skip_while(|e| e.event.stream_ordering > upto)
            .take_while(|e| e.event.stream_ordering > after)
            .take(limit)
            .map(|e| e.event.clone())
            .collect();
        // Complete if nothing older could belong to the answer: either the window starts at or
        // above the floor, or the limit was reached within the kept events.
        (after >= kept.floor || found.len() == limit).then_some(found)
    }

    /// The kept events among `ids`, and the ids that are not kept.
    pub(crate) fn events(&self, ids: &[OwnedEventId]) -> (Vec<StoredEvent>, Vec<OwnedEventId>) {
        let inner = self.lock();
        let mut found = Vec::with_capacity(ids.len());
        let mut missing = Vec::new();
        let mut seen = std::collections::HashSet::with_capacity(ids.len());
        for id in ids.iter().filter(|id| seen.insert(*id)) {
            match inner.entry(id) {
                Some(entry) => found.push(entry.event.clone()),
                None => missing.push(id.clone()),
            }
        }
        (found, missing)
    }

    /// The transaction ids the device used for these events, if every one of them is kept.
    pub(crate) fn transaction_ids(
        &self,
        user: &UserId,
        device: &DeviceId,
        ids: &[OwnedEventId],
    ) -> Option<Vec<(OwnedEventId, String)>> {
        let inner = self.lock();
        let mut out = Vec::new();
        for id in ids {
            let entry = inner.entry(id)?;
            if let Some(txn) = &entry.txn
                && txn.user_id == user
                && txn.device_id == device
            {
                out.push((id.clone(), txn.txn_id.to_string()));
            }
        }
        Some(out)
    }

    /// Of `ids`, those that may carry the mark: not kept, or kept and marked.
    pub(crate) fn maybe_marked(&self, ids: &[OwnedEventId], mark: Mark) -> Vec<OwnedEventId> {
        let inner = self.lock();
        ids.iter()
            .filter(|id| {
                inner.entry(id).is_none_or(|e| match mark {
                    Mark::Children => e.has_children,
                    Mark::Redacted => e.redacted,
                })
            })
            .cloned()
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{NewEvent, NewRelation};
    use ruma::{RoomVersionId, owned_room_id};

    fn event(id: &str) -> NewEvent {
        NewEvent {
            event_id: OwnedEventId::try_from(id).unwrap(),
            sender: ruma::owned_user_id!("@a:x"),
            event_type: "m.room.message".into(),
            state_key: None,
            depth: 1,
            origin_server_ts: 0,
            json: "{}".into(),
            prev_events: Vec::new(),
            auth_events: Vec::new(),
            state_group_before: 1,
            state_group_after: 1,
            txn: None,
        }
    }

    fn batch(room: &OwnedRoomId, ids: &[&str]) -> RoomBatch {
        RoomBatch {
            room_id: room.clone(),
            room_version: RoomVersionId::V11,
            creates_room: false,
            state_groups: Vec::new(),
            events: ids.iter().map(|id| event(id)).collect(),
            forward_extremities: Vec::new(),
            current_state_group: 1,
            current_state: Vec::new(),
            memberships: Vec::new(),
            redactions: Vec::new(),
            relations: Vec::new(),
            apart: Vec::new(),
        }
    }

    fn ids(events: &[StoredEvent]) -> Vec<i64> {
        events.iter().map(|e| e.stream_ordering).collect()
    }

    #[test]
    fn answers_only_what_it_knows_completely() {
        let recent = Recent::default();
        let room = owned_room_id!("!r:x");
        // Positions 10..=12: nothing of the room is known at or below 9.
        recent.record(&batch(&room, &["$a", "$b", "$c"]), &[10, 11, 12]);
        assert_eq!(
            ids(&recent.backwards(&room, 9, 12, 10).unwrap()),
            [12, 11, 10]
        );
        assert_eq!(ids(&recent.backwards(&room, 10, 11, 10).unwrap()), [11]);
        // Reaching below the floor is fine when the limit is met above it.
        assert_eq!(ids(&recent.backwards(&room, 0, 12, 2).unwrap()), [12, 11]);
        // ... and unknown when it is not.
        assert!(recent.backwards(&room, 0, 12, 4).is_none());
        assert!(
            recent
                .backwards(&owned_room_id!("!other:x"), 0, 12, 4)
                .is_none()
        );
        assert!(recent.backwards(&room, 9, 12, 0).is_none());
    }

    #[test]
    fn trimming_raises_the_floor() {
        let recent = Recent::default();
        let room = owned_room_id!("!r:x");
        let names: Vec<String> = (0..ROOM_EVENTS + 5).map(|i| format!("$e{i}")).collect();
        for (i, name) in names.iter().enumerate() {
            recent.record(&batch(&room, &[name]), &[i as i64 + 1]);
        }
        let newest = names.len() as i64;
        assert!(recent.backwards(&room, 4, newest, 1000).is_none());
        let all = recent.backwards(&room, 5, newest, 1000).unwrap();
        assert_eq!(all.len(), ROOM_EVENTS);
        let (found, missing) = recent.events(&[
            OwnedEventId::try_from("$e0").unwrap(),
            OwnedEventId::try_from(names.last().unwrap().as_str()).unwrap(),
        ]);
        assert_eq!((found.len(), missing.len()), (1, 1));
    }

    #[test]
    fn a_batch_larger_than_the_room_keeps_nothing_it_trimmed() {
        let recent = Recent::default();
        let room = owned_room_id!("!r:x");
        let names: Vec<String> = (0..ROOM_EVENTS * 2).map(|i| format!("$e{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let positions: Vec<i64> = (1..=names.len() as i64).collect();
        recent.record(&batch(&room, &refs), &positions);
        let inner = recent.lock();
        assert_eq!(inner.by_id.len(), ROOM_EVENTS);
        assert_eq!(inner.bytes, ROOM_EVENTS * "{}".len());
        drop(inner);
        let (found, missing) = recent.events(&[
            OwnedEventId::try_from("$e0").unwrap(),
            OwnedEventId::try_from("$e0").unwrap(),
        ]);
        assert_eq!(
            (found.len(), missing.len()),
            (0, 1),
            "asked twice, missing once"
        );
    }

    #[test]
    fn marks_children_and_redactions() {
        let recent = Recent::default();
        let room = owned_room_id!("!r:x");
        recent.record(&batch(&room, &["$parent", "$plain"]), &[1, 2]);
        let mut child = batch(&room, &["$child", "$redaction"]);
        child.relations.push(NewRelation {
            event_id: OwnedEventId::try_from("$child").unwrap(),
            relates_to: OwnedEventId::try_from("$parent").unwrap(),
            rel_type: "m.thread".into(),
        });
        child.redactions.push((
            OwnedEventId::try_from("$plain").unwrap(),
            OwnedEventId::try_from("$redaction").unwrap(),
        ));
        recent.record(&child, &[3, 4]);
        let all: Vec<OwnedEventId> = ["$parent", "$plain", "$child", "$unknown"]
            .iter()
            .map(|id| OwnedEventId::try_from(*id).unwrap())
            .collect();
        let names = |v: Vec<OwnedEventId>| v.iter().map(|i| i.to_string()).collect::<Vec<_>>();
        assert_eq!(
            names(recent.maybe_marked(&all, Mark::Children)),
            ["$parent", "$unknown"]
        );
        assert_eq!(
            names(recent.maybe_marked(&all, Mark::Redacted)),
            ["$plain", "$unknown"]
        );
    }
}
