//! What partners may read of our rooms: single events, the state at an event and its auth
//! chain, the events between two points (`get_missing_events`) and history (`backfill`).
//! Every read is refused (403) unless the asking server has a member joined to the room now,
//! and only the room's own events are served: nothing of another room, nothing rejected or
//! soft-failed.
//!
//! Not yet: history visibility per server (a server whose users left cannot read what they
//! saw; a `world_readable` room is not readable by servers with nobody in it).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use ruma::{EventId, OwnedEventId, RoomId, ServerName};

use hearth_rooms::{Pdu, RoomError};

use crate::{Federation, FederationError};

/// The most events `get_missing_events` and `backfill` answer with.
pub const MAX_EVENTS: usize = 100;

impl Federation {
    /// Refuse a server with nobody in the room.
    pub async fn check_may_read(
        &self,
        origin: &ServerName,
        room: &RoomId,
    ) -> Result<(), FederationError> {
        let servers = self.inner.store.servers_in_room(room).await?;
        if servers.iter().any(|s| s == origin) {
            self.check_acl(room, origin).await
        } else {
            Err(FederationError::NotYours(format!(
                "{origin} has no member in {room}"
            )))
        }
    }

    /// One of the room's events, if the asker may read the room.
    pub async fn read_event(
        &self,
        origin: &ServerName,
        id: &EventId,
    ) -> Result<Arc<Pdu>, FederationError> {
        let pdu = self
            .inner
            .rooms
            .pdu(id)
            .await
            .map_err(FederationError::Room)?
            .ok_or_else(|| FederationError::Room(RoomError::MissingEvent(id.to_owned())))?;
        self.check_may_read(origin, pdu.room()).await?;
        Ok(pdu)
    }

    /// An event of `room` the asker may read (404 for an event of another room).
    async fn event_of(
        &self,
        origin: &ServerName,
        room: &RoomId,
        id: &EventId,
    ) -> Result<Arc<Pdu>, FederationError> {
        self.check_may_read(origin, room).await?;
        let pdu = self
            .inner
            .rooms
            .pdu(id)
            .await
            .map_err(FederationError::Room)?
            .filter(|p| p.room() == room)
            .ok_or_else(|| FederationError::Room(RoomError::MissingEvent(id.to_owned())))?;
        Ok(pdu)
    }

    /// The state at (before) an event of `room`, and the auth chain of that state: ids.
    pub async fn read_state_ids(
        &self,
        origin: &ServerName,
        room: &RoomId,
        at: &EventId,
    ) -> Result<(Vec<OwnedEventId>, Vec<OwnedEventId>), FederationError> {
        self.event_of(origin, room, at).await?;
        let state: Vec<OwnedEventId> = self
            .inner
            .rooms
            .state_before(at)
            .await
            .map_err(FederationError::Room)?
            .into_values()
            .collect();
        let chain = self.inner.store.auth_chain(&state).await?;
        Ok((state, chain))
    }

    /// Events by id (those we have).
    pub async fn read_events(
        &self,
        ids: &[OwnedEventId],
    ) -> Result<Vec<Arc<Pdu>>, FederationError> {
        let found = self
            .inner
            .rooms
            .load_pdus(ids)
            .await
            .map_err(FederationError::Room)?;
        Ok(ids.iter().filter_map(|id| found.get(id).cloned()).collect())
    }

    /// The auth chain of an event of `room`.
    pub async fn read_event_auth(
        &self,
        origin: &ServerName,
        room: &RoomId,
        id: &EventId,
    ) -> Result<Vec<Arc<Pdu>>, FederationError> {
        let pdu = self.event_of(origin, room, id).await?;
        let chain = self.inner.store.auth_chain(pdu.auth_event_ids()).await?;
        let mut ids: Vec<OwnedEventId> = pdu.auth_event_ids().to_vec();
        ids.extend(chain);
        ids.sort();
        ids.dedup();
        self.read_events(&ids).await
    }

    /// Walk back from `from` through `prev_events`, not past `stop`, at most `limit` events
    /// of `room`, oldest first.
    async fn walk_back(
        &self,
        room: &RoomId,
        from: &[OwnedEventId],
        stop: &HashSet<OwnedEventId>,
        limit: usize,
        include_start: bool,
    ) -> Result<Vec<Arc<Pdu>>, FederationError> {
        let limit = limit.min(MAX_EVENTS);
        let mut seen: HashSet<OwnedEventId> = stop.clone();
        let mut found: BTreeMap<(u64, OwnedEventId), Arc<Pdu>> = BTreeMap::new();
        let mut frontier: Vec<OwnedEventId> = if include_start {
            from.to_vec()
        } else {
            let starts = self.read_events(from).await?;
            starts
                .iter()
                .flat_map(|p| p.prev_event_ids().to_vec())
                .collect()
        };
        while !frontier.is_empty() && found.len() < limit {
            frontier.retain(|id| seen.insert(id.clone()));
            let events = self.read_events(&frontier).await?;
            frontier = Vec::new();
            for pdu in events {
                if pdu.room() != room || found.len() >= limit {
                    continue;
                }
                frontier.extend(pdu.prev_event_ids().iter().cloned());
                found.insert((pdu.depth(), pdu.owned_event_id().clone()), pdu);
            }
        }
        Ok(found.into_values().collect())
    }

    /// `get_missing_events`: the events before `latest` and after `earliest`.
    pub async fn read_missing(
        &self,
        origin: &ServerName,
        room: &RoomId,
        earliest: &[OwnedEventId],
        latest: &[OwnedEventId],
        limit: usize,
        min_depth: u64,
    ) -> Result<Vec<Arc<Pdu>>, FederationError> {
        self.check_may_read(origin, room).await?;
        let stop: HashSet<OwnedEventId> = earliest.iter().cloned().collect();
        let mut events = self.walk_back(room, latest, &stop, limit, false).await?;
        events.retain(|p| p.depth() >= min_depth);
        Ok(events)
    }

    /// `backfill`: history from the events `from` back, oldest first.
    pub async fn read_backfill(
        &self,
        origin: &ServerName,
        room: &RoomId,
        from: &[OwnedEventId],
        limit: usize,
    ) -> Result<Vec<Arc<Pdu>>, FederationError> {
        self.check_may_read(origin, room).await?;
        self.walk_back(room, from, &HashSet::new(), limit, true)
            .await
    }
}

impl Federation {
    /// Events as they go over federation: their canonical JSON, redacted if a redaction of
    /// them was applied here (a partner never gets content that was taken back).
    pub async fn as_sent(
        &self,
        pdus: &[Arc<Pdu>],
    ) -> Result<Vec<Box<serde_json::value::RawValue>>, FederationError> {
        let ids: Vec<OwnedEventId> = pdus.iter().map(|p| p.owned_event_id().clone()).collect();
        let redacted: HashSet<OwnedEventId> = self
            .inner
            .store
            .redactions_of(&ids)
            .await?
            .into_iter()
            .map(|(target, _)| target)
            .collect();
        pdus.iter()
            .map(|pdu| {
                let json = if redacted.contains(pdu.owned_event_id()) {
                    pdu.redacted()
                        .map_err(FederationError::Room)?
                        .canonical_json()
                } else {
                    pdu.canonical_json()
                };
                serde_json::value::RawValue::from_string(json)
                    .map_err(|e| FederationError::BadRequest(e.to_string()))
            })
            .collect()
    }
}
