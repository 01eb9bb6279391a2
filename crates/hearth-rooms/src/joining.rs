//! Joining a room that lives on another server: the resident server's answer to `send_join`
//! (the room's state before our join, and its auth chain) becomes the room here. Every event
//! of it must be of the room and pass the auth rules given its own auth events, and our join
//! must pass them given the state; then the room is created in one batch, its state and auth
//! chain kept as outliers (`events_apart`: known without their own state, apart from the
//! DAG), our join its first event and forward extremity. A room we knew and left is joined
//! the same way: the resident's state replaces ours (which stopped when we left), our join
//! becomes its one forward extremity.
//!
//! The caller (`hearth-federation`) has checked every event's signatures and hashes.

use std::collections::HashMap;
use std::sync::Arc;

use hearth_store::{ApartEvent, ApartStatus, NewStateGroup, RoomBatch};
use ruma::events::{StateEventType, TimelineEventType};
use ruma::{OwnedEventId, OwnedUserId, RoomVersionId};

use crate::state::row_key;
use crate::{Appended, Pdu, RoomError, RoomState, Rooms, auth};

/// The resident server's answer, checked for signatures and hashes.
#[derive(Debug)]
pub struct RemoteJoin {
    pub version: RoomVersionId,
    /// Our join, as signed by us (and the resident server, for restricted rooms).
    pub join: Arc<Pdu>,
    pub state: Vec<Arc<Pdu>>,
    pub auth_chain: Vec<Arc<Pdu>>,
}

impl Rooms {
    /// Make a room joined over federation a room here.
    pub async fn join_remote_room(&self, joined: RemoteJoin) -> Result<Appended, RoomError> {
        let rules = joined
            .version
            .rules()
            .ok_or_else(|| RoomError::UnsupportedVersion(joined.version.clone()))?;
        let room_id = joined.join.room().to_owned();
        // Known here already (we left it, and come back): the resident server's state
        // replaces what we knew, which stopped when we left.
        let known = self.store().room_head(&room_id).await?.is_some();
        let mut all: HashMap<OwnedEventId, Arc<Pdu>> = HashMap::new();
        for pdu in joined.state.iter().chain(&joined.auth_chain) {
            if pdu.room() != room_id {
                return Err(RoomError::Forbidden(format!(
                    "the resident server sent {}, an event of another room",
                    pdu.event_id()
                )));
            }
            all.insert(pdu.owned_event_id().clone(), pdu.clone());
        }
        let create = all
            .values()
            .find(|p| *p.kind() == TimelineEventType::RoomCreate && p.state_key() == Some(""))
            .cloned()
            .ok_or_else(|| RoomError::Forbidden("the room's state has no create event".into()))?;
        let auth_events_of = |pdu: &Pdu| -> Result<Vec<Arc<Pdu>>, RoomError> {
            pdu.auth_event_ids()
                .iter()
                .map(|id| {
                    all.get(id).cloned().ok_or_else(|| {
                        RoomError::Forbidden(format!(
                            "{} names the auth event {id}, which the resident server did not send",
                            pdu.event_id()
                        ))
                    })
                })
                .collect()
        };
        let lookup = |events: &[Arc<Pdu>], kind: &StateEventType, key: &str| {
            events
                .iter()
                .find(|p| p.kind().to_string() == kind.to_string() && p.state_key() == Some(key))
                .cloned()
                .or_else(|| {
                    (*kind == StateEventType::RoomCreate && key.is_empty()).then(|| create.clone())
                })
        };
        // Every event of the state and its chain, by its own auth events, oldest first.
        let mut ordered: Vec<&Arc<Pdu>> = all.values().collect();
        ordered.sort_by_key(|p| (p.depth(), p.origin_server_ts()));
        for pdu in ordered {
            let auth_events = auth_events_of(pdu)?;
            auth::check(&rules.authorization, pdu, &auth_events, |kind, key| {
                lookup(&auth_events, kind, key)
            })
            .map_err(|e| {
                RoomError::Forbidden(format!(
                    "the resident server sent {}, which the auth rules refuse: {e}",
                    pdu.event_id()
                ))
            })?;
        }
        let state: RoomState = joined
            .state
            .iter()
            .filter_map(|p| {
                let key = p.state_key()?;
                Some((
                    (StateEventType::from(p.kind().to_string()), key.to_owned()),
                    p.clone(),
                ))
            })
            .collect();
        // Our join, by the state before it.
        let join = &joined.join;
        let join_auth = auth_events_of(join)?;
        auth::check(&rules.authorization, join, &join_auth, |kind, key| {
            state.get(&(kind.clone(), key.to_owned())).cloned()
        })
        .map_err(|e| RoomError::Forbidden(format!("our join is refused: {e}")))?;

        let store = self.store();
        let before = store.allocate_state_group();
        let after = store.allocate_state_group();
        let join_key = (StateEventType::RoomMember, join.sender().to_string());
        let groups = vec![
            NewStateGroup {
                id: before,
                parent: None,
                chain_len: 0,
                delta: state
                    .iter()
                    .map(|(k, p)| (row_key(k), Some(p.owned_event_id().clone())))
                    .collect(),
            },
            NewStateGroup {
                id: after,
                parent: Some(before),
                chain_len: 1,
                delta: vec![(row_key(&join_key), Some(join.owned_event_id().clone()))],
            },
        ];
        let mut current: Vec<((String, String), OwnedEventId)> = state
            .iter()
            .filter(|(k, _)| **k != join_key)
            .map(|(k, p)| (row_key(k), p.owned_event_id().clone()))
            .collect();
        current.push((row_key(&join_key), join.owned_event_id().clone()));
        let mut memberships: Vec<(OwnedUserId, String, OwnedEventId)> = state
            .iter()
            .filter(|((kind, key), _)| *kind == StateEventType::RoomMember && *key != join_key.1)
            .filter_map(|((_, key), pdu)| {
                Some((
                    OwnedUserId::try_from(key.as_str()).ok()?,
                    pdu.membership()?,
                    pdu.owned_event_id().clone(),
                ))
            })
            .collect();
        memberships.push((
            join.sender().to_owned(),
            "join".to_owned(),
            join.owned_event_id().clone(),
        ));
        let batch = RoomBatch {
            room_id: room_id.clone(),
            room_version: joined.version.clone(),
            creates_room: !known,
            state_groups: groups,
            events: vec![join.new_event(before, after, None)],
            forward_extremities: vec![join.owned_event_id().clone()],
            current_state_group: after,
            current_state: current,
            memberships,
            redactions: Vec::new(),
            relations: Vec::new(),
            apart: all
                .values()
                .filter(|p| p.event_id() != join.event_id())
                .map(|p| ApartEvent {
                    event_id: p.owned_event_id().clone(),
                    status: ApartStatus::Outlier,
                    reason: None,
                    json: p.canonical_json(),
                    auth_events: p.auth_event_ids().to_vec(),
                })
                .collect(),
        };
        let pdus: Vec<Arc<Pdu>> = all.values().chain(std::iter::once(join)).cloned().collect();
        let positions = if known {
            self.commit_replacing(batch, pdus).await?
        } else {
            for pdu in pdus {
                self.remember_pdu(pdu);
            }
            store.persist(batch).await?
        };
        Ok(Appended {
            event_id: join.owned_event_id().clone(),
            stream: positions.first().copied().unwrap_or_default(),
            duplicate: false,
        })
    }
}
