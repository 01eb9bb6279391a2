//! Another server's event, taken into a room by the room's actor, in the spec's order once
//! its format, signatures and hashes have been checked (by `hearth-federation`):
//! <https://spec.matrix.org/v1.16/server-server-api/#checks-performed-on-receipt-of-a-pdu>
//!
//! 4. it passes the auth rules given its own `auth_events` (which must be this room's), else
//!    it is rejected;
//! 5. it passes them given the state before it, else it is rejected;
//! 6. it passes them given the room's current state, else it is soft-failed.
//!
//! The state before it is the working head's state when its `prev_events` are exactly the
//! room's forward extremities (the usual case: one server after another), the state the
//! caller worked out if it gave one (a join's), or else the resolution (v2 / v2.1) of the
//! states after each of its `prev_events`. It then becomes a forward extremity in place of
//! its `prev_events`; when it forks the room, the room's current state becomes the
//! resolution of the head's state and the state after it.
//!
//! Rejected and soft-failed events are kept apart from the DAG (`events_apart`), in the same
//! commit as the rest of the batch: a rejected event never enters state or timelines, a
//! soft-failed one is not served to clients, not sent on, and not a forward extremity.
//!
//! Not yet: events whose `prev_events` are unknown are refused (fetching them with
//! `get_missing_events` is the federation side's next step), and an event whose
//! `prev_events` fork from an event of the same uncommitted batch waits for the next one.

use std::collections::BTreeSet;
use std::sync::Arc;

use hearth_store::{ApartEvent, ApartStatus, NewStateGroup, StateDelta};
use ruma::events::{StateEventType, TimelineEventType};
use ruma::{OwnedEventId, OwnedUserId};

use super::{MAX_DELTA_CHAIN, Working};
use crate::state::row_key;
use crate::{Pdu, RoomError, RoomState, Rooms, StateIds, auth, relations};

/// Another server's event for a room, already checked for format, signatures and hashes.
#[derive(Debug, Clone)]
pub struct Remote {
    pub pdu: Arc<Pdu>,
    /// The state before the event, if the caller knows it (a join's, from `send_join`);
    /// otherwise the actor works it out from the event's `prev_events`.
    pub state_before: Option<StateIds>,
}

/// What became of a remote event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// It is in the room, at this stream position.
    Accepted { stream: i64 },
    /// Kept apart: authorised by the state before it, but not by the current state.
    SoftFailed(String),
    /// Kept apart: it breaks the auth rules.
    Rejected(String),
    /// Known already (in the room or kept apart).
    Known,
}

impl Working<'_> {
    pub(super) async fn add_remote(
        &mut self,
        rooms: &Rooms,
        remote: &Remote,
    ) -> Result<Received, RoomError> {
        let pdu = &remote.pdu;
        if pdu.room() != self.head.room_id {
            return Err(RoomError::Invalid(format!(
                "{} is an event of {}, not of {}",
                pdu.event_id(),
                pdu.room(),
                self.head.room_id
            )));
        }
        let id = pdu.owned_event_id();
        if self.pdus.iter().any(|p| p.event_id() == id)
            || self.apart.iter().any(|a| &a.event_id == id)
            || rooms.store().has_event(id).await?
        {
            return Ok(Received::Known);
        }
        if let Some((status, _)) = rooms.store().apart_status(id).await?
            && status != ApartStatus::Outlier
        {
            return Ok(Received::Known);
        }
        let rules = self.head.rules.clone();

        // 4. Its own auth events: all known, all of this room.
        let mut auth_events = Vec::with_capacity(pdu.auth_event_ids().len());
        let stored = rooms.load_pdus(pdu.auth_event_ids()).await?;
        for auth_id in pdu.auth_event_ids() {
            let found = self
                .pdus
                .iter()
                .find(|p| p.event_id() == auth_id)
                .cloned()
                .or_else(|| stored.get(auth_id).cloned())
                .ok_or_else(|| RoomError::MissingEvent(auth_id.clone()))?;
            if found.room() != pdu.room() {
                return Ok(self.reject(pdu, format!("auth event {auth_id} is of another room")));
            }
            auth_events.push(found);
        }
        let by_key = |events: &[Arc<Pdu>], kind: &StateEventType, key: &str| {
            events
                .iter()
                .find(|p| p.kind().to_string() == kind.to_string() && p.state_key() == Some(key))
                .cloned()
        };
        // From room version 12 the create event is no auth event but is still consulted: it
        // is the room's.
        let create = self.get(&(StateEventType::RoomCreate, String::new()));
        if let Err(e) = auth::check(&rules.authorization, pdu, &auth_events, |kind, key| {
            by_key(&auth_events, kind, key).or_else(|| {
                (*kind == StateEventType::RoomCreate && key.is_empty())
                    .then(|| create.clone())
                    .flatten()
            })
        }) {
            return Ok(self.reject(pdu, format!("by its auth events: {e}")));
        }

        // 5. The state before it.
        let prev: BTreeSet<&OwnedEventId> = pdu.prev_event_ids().iter().collect();
        let extremities: BTreeSet<&OwnedEventId> = self
            .extremities
            .iter()
            .map(|p| p.owned_event_id())
            .collect();
        let linear = remote.state_before.is_none() && prev == extremities;
        let state_before: Option<RoomState> = if linear {
            None
        } else {
            let ids = match &remote.state_before {
                Some(given) => given.clone(),
                None => {
                    for prev_id in &prev {
                        if self.pdus.iter().any(|p| p.event_id() == *prev_id)
                            || !rooms.store().has_event(prev_id).await?
                        {
                            return Err(RoomError::MissingEvent((*prev_id).clone()));
                        }
                    }
                    let prev: Vec<OwnedEventId> = prev.iter().map(|id| (*id).clone()).collect();
                    rooms.resolve_after(&self.head.version, &prev).await?
                }
            };
            Some(load_state(rooms, &ids).await?)
        };
        let before = |kind: &StateEventType, key: &str| match &state_before {
            Some(state) => state.get(&(kind.clone(), key.to_owned())).cloned(),
            None => self.get(&(kind.clone(), key.to_owned())),
        };
        // Its own auth events were checked above; these need not be the state's.
        if let Err(e) = auth::check_by_state(&rules.authorization, pdu, before) {
            return Ok(self.reject(pdu, format!("by the state before it: {e}")));
        }

        // 6. The current state.
        if state_before.is_some() {
            let now = |kind: &StateEventType, key: &str| self.get(&(kind.clone(), key.to_owned()));
            if let Err(e) = auth::check_by_state(&rules.authorization, pdu, now) {
                let reason = format!("by the room's current state: {e}");
                self.apart.push(ApartEvent {
                    event_id: id.clone(),
                    status: ApartStatus::SoftFailed,
                    reason: Some(reason.clone()),
                    json: pdu.canonical_json(),
                    auth_events: pdu.auth_event_ids().to_vec(),
                });
                return Ok(Received::SoftFailed(reason));
            }
        }

        self.accept(rooms, pdu, state_before).await?;
        Ok(Received::Accepted { stream: 0 })
    }

    fn reject(&mut self, pdu: &Pdu, reason: String) -> Received {
        self.apart.push(ApartEvent {
            event_id: pdu.owned_event_id().clone(),
            status: ApartStatus::Rejected,
            reason: Some(reason.clone()),
            json: pdu.canonical_json(),
            auth_events: pdu.auth_event_ids().to_vec(),
        });
        Received::Rejected(reason)
    }

    /// Add an authorised remote event to the batch, with its state groups, the head's new
    /// extremities and (at a fork) the resolved current state.
    async fn accept(
        &mut self,
        rooms: &Rooms,
        pdu: &Arc<Pdu>,
        state_before: Option<RoomState>,
    ) -> Result<(), RoomError> {
        let store = rooms.store();
        let state_key = pdu
            .state_key()
            .map(|k| (StateEventType::from(pdu.kind().to_string()), k.to_owned()));
        let forked = state_before.is_some();
        // Everything that can fail comes first: an event is added to the batch whole or not
        // at all (a half-added one would be committed as an extremity the state ignores).
        let target = match ruma::state_res::Event::redacts(pdu.as_ref()) {
            Some(target) => rooms.pdu(target).await?,
            None => None,
        };
        let resolved = match &state_before {
            None => None,
            Some(before) => {
                let current = self.full_state();
                // A fork: the room's state becomes the resolution of the head's state and
                // the state after this event.
                let mut after = before.clone();
                if let Some(key) = &state_key {
                    after.insert(key.clone(), pdu.clone());
                }
                let ids = rooms
                    .resolve_states(
                        &self.head.version,
                        vec![crate::ids_of(&current), crate::ids_of(&after)],
                        std::slice::from_ref(pdu),
                    )
                    .await?;
                Some((current, load_state_with(rooms, &ids, &after).await?))
            }
        };
        // The state groups before and after the event.
        let (group_before, chain_before) = match &state_before {
            None => (self.state_group, self.chain_len),
            Some(state) => (self.snapshot(rooms, state), 0),
        };
        let group_after = match &state_key {
            Some(key) => {
                let id = store.allocate_state_group();
                let (parent, chain_len, delta): (Option<i64>, i64, Vec<StateDelta>) =
                    if chain_before + 1 >= MAX_DELTA_CHAIN {
                        let mut full = match &state_before {
                            Some(state) => state.clone(),
                            None => self.full_state(),
                        };
                        full.insert(key.clone(), pdu.clone());
                        let delta = full
                            .iter()
                            .map(|(k, p)| (row_key(k), Some(p.owned_event_id().clone())))
                            .collect();
                        (None, 0, delta)
                    } else {
                        (
                            Some(group_before),
                            chain_before + 1,
                            vec![(row_key(key), Some(pdu.owned_event_id().clone()))],
                        )
                    };
                self.groups.push(NewStateGroup {
                    id,
                    parent,
                    chain_len,
                    delta,
                });
                if !forked {
                    self.chain_len = chain_len;
                }
                id
            }
            None => group_before,
        };
        self.events
            .push(pdu.new_event(group_before, group_after, None));
        self.extremities
            .retain(|e| !pdu.prev_event_ids().contains(e.owned_event_id()));
        self.extremities.push(pdu.clone());
        self.pdus.push(pdu.clone());
        rooms.remember_pdu(pdu.clone());
        if let Some(relation) = relations::new_relation(pdu.owned_event_id(), &pdu.content_json()) {
            self.relations.push(relation);
        }
        // A redaction is applied when its sender may (wrote the target, or has the power); one
        // the rules let through but this check does not stays unapplied, as for local ones.
        if target.is_some()
            && let Ok(Some(redacted)) = self.check_redaction(pdu, target.as_deref())
        {
            self.redactions
                .push((redacted, pdu.owned_event_id().clone()));
        }

        match (forked, state_key) {
            (false, Some(key)) => {
                self.overlay.insert(key, pdu.clone());
                self.state_group = group_after;
                self.note_membership(pdu);
            }
            (false, None) => {}
            (true, _) => {
                let (current, resolved) = resolved.unwrap_or_default();
                for (key, event) in &resolved {
                    if current.get(key).map(|p| p.event_id()) != Some(event.event_id()) {
                        self.overlay.insert(key.clone(), event.clone());
                        self.note_membership(event);
                    }
                }
                self.state_group = self.snapshot(rooms, &resolved);
                self.chain_len = 0;
            }
        }
        Ok(())
    }

    /// A full snapshot state group of `state`, added to the batch.
    fn snapshot(&mut self, rooms: &Rooms, state: &RoomState) -> i64 {
        let id = rooms.store().allocate_state_group();
        self.groups.push(NewStateGroup {
            id,
            parent: None,
            chain_len: 0,
            delta: state
                .iter()
                .map(|(k, p)| (row_key(k), Some(p.owned_event_id().clone())))
                .collect(),
        });
        id
    }

    fn note_membership(&mut self, pdu: &Pdu) {
        if *pdu.kind() == TimelineEventType::RoomMember
            && let (Some(user), Some(membership)) = (
                pdu.state_key().and_then(|k| OwnedUserId::try_from(k).ok()),
                pdu.membership(),
            )
        {
            self.memberships
                .insert(user, (membership, pdu.owned_event_id().clone()));
        }
    }
}

async fn load_state(rooms: &Rooms, ids: &StateIds) -> Result<RoomState, RoomError> {
    load_state_with(rooms, ids, &RoomState::new()).await
}

/// The events of a state by id, from `known` where it has them, else the store.
async fn load_state_with(
    rooms: &Rooms,
    ids: &StateIds,
    known: &RoomState,
) -> Result<RoomState, RoomError> {
    let known_ids: std::collections::HashMap<&OwnedEventId, &Arc<Pdu>> =
        known.values().map(|p| (p.owned_event_id(), p)).collect();
    let wanted: Vec<OwnedEventId> = ids
        .values()
        .filter(|id| !known_ids.contains_key(id))
        .cloned()
        .collect();
    let loaded = rooms.load_pdus(&wanted).await?;
    ids.iter()
        .map(|(key, id)| {
            let pdu = known_ids
                .get(id)
                .map(|p| Arc::clone(p))
                .or_else(|| loaded.get(id).cloned())
                .ok_or_else(|| RoomError::MissingEvent(id.clone()))?;
            Ok((key.clone(), pdu))
        })
        .collect()
}
