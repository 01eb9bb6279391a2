//! The event graph: building, hashing, signing and redacting PDUs, the authorisation rules,
//! state resolution, state snapshots, and the one append pipeline every event passes through.
//!
//! This crate does no network I/O. Whatever needs a remote server is orchestrated elsewhere and
//! hands complete, verified events in.

mod auth;
mod build;
mod create;
mod error;
mod joining;
mod pdu;
mod pdu_cache;
mod pipeline;
mod power;
mod relations;
mod resident;
mod resolve;
mod restricted;
mod state;
mod upgrade;
mod visibility;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hearth_keys::SigningKey;
use hearth_store::{NewEvent, NewStateGroup, Store};
use ruma::events::{StateEventType, TimelineEventType};
use ruma::{
    EventId, MilliSecondsSinceUnixEpoch, OwnedEventId, OwnedRoomId, RoomId, RoomVersionId, UserId,
};
use tokio::sync::{mpsc, oneshot, watch};

pub use auth::{auth_types, check as check_auth, check_against, select_auth_events};
pub use build::EventDraft;
pub use create::{NewRoom, Preset};
pub use error::RoomError;
pub use joining::RemoteJoin;

/// Every room version the event graph implements (capabilities, joins over federation).
pub const ROOM_VERSIONS: &[RoomVersionId] = &[
    RoomVersionId::V1,
    RoomVersionId::V2,
    RoomVersionId::V3,
    RoomVersionId::V4,
    RoomVersionId::V5,
    RoomVersionId::V6,
    RoomVersionId::V7,
    RoomVersionId::V8,
    RoomVersionId::V9,
    RoomVersionId::V10,
    RoomVersionId::V11,
    RoomVersionId::V12,
];
pub use pdu::{MAX_PDU_BYTES, Pdu, canonical_string, redact};
pub use pipeline::{Append, Appended, MAX_BATCH, MAX_DELTA_CHAIN, Received, Remote};
pub use power::{CREATOR_POWER, Power};
pub use relations::{Reader, relation_of};
pub use resident::JoinedState;
pub use resolve::{EventMap, auth_chain, resolve};
pub use state::{RoomState, STRIPPED_STATE_TYPES, StateIds, ids_of};
pub use upgrade::Upgrade;
pub use visibility::{is_own_membership, member_key};

/// The rooms service: create rooms, append events, read the graph.
#[derive(Clone)]
pub struct Rooms {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    key: Arc<SigningKey>,
    actors: Mutex<HashMap<OwnedRoomId, mpsc::Sender<pipeline::Request>>>,
    /// Parsed events by id, shared by every reader (see [`pdu_cache`]).
    pdus: pdu_cache::PduCache,
    /// The last create event's timestamp. From room version 12 a room's id is its create
    /// event's hash, so two identical createRoom requests in one millisecond would make the same
    /// room; each create event gets a later timestamp than the one before instead.
    last_create_ts: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Rooms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rooms")
            .field("server", &self.inner.key.server_name())
            .finish_non_exhaustive()
    }
}

impl Rooms {
    /// Parsed events a default-sized machine keeps in memory.
    pub const DEFAULT_PDU_CACHE: usize = 4_096;

    pub fn new(store: Store, key: Arc<SigningKey>) -> Self {
        Self::with_pdu_cache(store, key, Self::DEFAULT_PDU_CACHE)
    }

    /// With room for `pdu_cache` parsed events (the hardware profile's number).
    pub fn with_pdu_cache(store: Store, key: Arc<SigningKey>, pdu_cache: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                key,
                actors: Mutex::new(HashMap::new()),
                pdus: pdu_cache::PduCache::new(pdu_cache),
                last_create_ts: std::sync::atomic::AtomicU64::new(0),
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn key(&self) -> &SigningKey {
        &self.inner.key
    }

    /// Now, or one millisecond after the previous create event if that is later.
    fn create_timestamp(&self) -> MilliSecondsSinceUnixEpoch {
        use std::sync::atomic::Ordering;
        let now = u64::from(MilliSecondsSinceUnixEpoch::now().get());
        let previous = self
            .inner
            .last_create_ts
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
                Some(now.max(last + 1))
            })
            .unwrap_or(now);
        let ts = now.max(previous + 1);
        MilliSecondsSinceUnixEpoch(ruma::UInt::new_saturating(ts))
    }

    /// "Persisted up to stream position N": changes whenever an append commits.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.inner.store.subscribe()
    }

    /// Create a room: build, authorise and persist its `m.room.create` event. `extra` is merged
    /// into the create content (e.g. `m.federate`, `predecessor`, `additional_creators`).
    pub async fn create_room(
        &self,
        version: &RoomVersionId,
        creator: &UserId,
        extra: serde_json::Map<String, serde_json::Value>,
    ) -> Result<(OwnedRoomId, Appended), RoomError> {
        let (room, appended) = self
            .create_room_as(version, creator, extra, None, &[])
            .await?;
        let create = appended
            .into_iter()
            .next()
            .ok_or_else(|| RoomError::Invalid("no create event".into()))?;
        Ok((room, create))
    }

    /// [`Rooms::create_room`] under a room id chosen ahead (`chosen`), for the room versions
    /// whose room ids are random (ignored where the room id is the create event's hash), with
    /// the `initial` events after the create event committed together with it (a genesis
    /// batch: all of the room or none of it). The create event's outcome comes first.
    pub(crate) async fn create_room_as(
        &self,
        version: &RoomVersionId,
        creator: &UserId,
        extra: serde_json::Map<String, serde_json::Value>,
        chosen: Option<&RoomId>,
        initial: &[Append],
    ) -> Result<(OwnedRoomId, Vec<Appended>), RoomError> {
        let rules = version
            .rules()
            .ok_or_else(|| RoomError::UnsupportedVersion(version.clone()))?;
        let mut content = extra;
        content.insert("room_version".into(), version.as_str().into());
        if !rules.authorization.use_room_create_sender {
            content.insert("creator".into(), creator.as_str().into());
        }
        let random_id;
        let room_id = if rules.authorization.room_create_event_id_as_room_id {
            None
        } else {
            random_id = match chosen {
                Some(room) => room.to_owned(),
                None => RoomId::new_v1(self.key().server_name()),
            };
            Some(random_id.as_ref())
        };
        let frame = build::Frame {
            rules: &rules,
            room_id,
            key: self.key(),
        };
        let draft = EventDraft::state(TimelineEventType::RoomCreate, "", content.into());
        let pdu = build::build(
            &frame,
            &draft,
            creator,
            &[],
            &[],
            1,
            self.create_timestamp(),
        )?;
        auth::check(&rules.authorization, &pdu, &[], |_, _| None)?;

        let room_id = pdu.room().to_owned();
        let group = self.store().allocate_state_group();
        let key = ("m.room.create".to_owned(), String::new());
        let event_id = pdu.owned_event_id().clone();
        let create = NewEvent {
            event_id: event_id.clone(),
            sender: creator.to_owned(),
            event_type: draft.kind.to_string(),
            state_key: Some(String::new()),
            depth: 1,
            origin_server_ts: i64::from(pdu.origin_server_ts().get()),
            json: pdu.canonical_json(),
            prev_events: Vec::new(),
            auth_events: Vec::new(),
            state_group_before: group,
            state_group_after: group,
            txn: None,
        };
        let create_group = NewStateGroup {
            id: group,
            parent: None,
            chain_len: 0,
            delta: vec![(key, Some(event_id))],
        };
        let pdu = Arc::new(pdu);
        let head = pipeline::Head {
            room_id: room_id.clone(),
            version: version.clone(),
            rules,
            extremities: vec![pdu.clone()],
            state_group: group,
            chain_len: 0,
            state: RoomState::from([((StateEventType::RoomCreate, String::new()), pdu)]),
        };
        let appended = pipeline::genesis(self, head, create, create_group, initial).await?;
        Ok((room_id, appended))
    }

    /// Append a local event to a room through the room's pipeline. Returns once it is durable.
    pub async fn append(&self, room_id: &RoomId, append: Append) -> Result<Appended, RoomError> {
        self.check_local(&append.sender)?;
        self.ask(room_id, |reply| pipeline::Request::Local(append, reply))
            .await
    }

    /// Build and authorise a local event on the room's current head without committing it:
    /// an invite of another server's user, which that server signs before the event is taken
    /// in with [`Rooms::receive`] like any remote event (its `prev_events` may by then be a
    /// fork, which the remote path resolves).
    pub async fn prepare(&self, room_id: &RoomId, append: Append) -> Result<Arc<Pdu>, RoomError> {
        self.check_local(&append.sender)?;
        self.ask(room_id, |reply| pipeline::Request::Prepare(append, reply))
            .await
    }

    /// Commit a batch that replaces an existing room's head, through the room's actor (so
    /// that no append races it, and the actor reads the new head afterwards).
    pub(crate) async fn commit_replacing(
        &self,
        batch: hearth_store::RoomBatch,
        pdus: Vec<Arc<Pdu>>,
    ) -> Result<Vec<i64>, RoomError> {
        let room_id = batch.room_id.clone();
        self.ask(&room_id, |reply| {
            pipeline::Request::Commit(Box::new(batch), pdus, reply)
        })
        .await
    }

    /// Take another server's event (format, signatures and hashes already checked) into its
    /// room through the room's pipeline: accepted, soft-failed or rejected as the auth rules
    /// say (see `pipeline/remote.rs`). Returns once that is durable.
    pub async fn receive(&self, remote: Remote) -> Result<Received, RoomError> {
        let room_id = remote.pdu.room().to_owned();
        self.ask(&room_id, |reply| pipeline::Request::Remote(remote, reply))
            .await
    }

    /// Hand a request to the room's actor and wait for its answer. A room's actor may have
    /// just exited (an unknown room); one fresh try is enough.
    async fn ask<T>(
        &self,
        room_id: &RoomId,
        request: impl FnOnce(oneshot::Sender<Result<T, RoomError>>) -> pipeline::Request,
    ) -> Result<T, RoomError> {
        let (reply, answer) = oneshot::channel();
        let mut request = request(reply);
        for _ in 0..2 {
            let sender = self.actor(room_id);
            match sender.send(request).await {
                Ok(()) => return answer.await.map_err(|_| RoomError::Shutdown)?,
                Err(mpsc::error::SendError(returned)) => {
                    self.forget_actor(room_id);
                    request = returned;
                }
            }
        }
        Err(RoomError::Shutdown)
    }

    /// Only this server's users can send through the local pipeline: we sign what we build, and
    /// nobody would accept our signature for another server's user.
    fn check_local(&self, sender: &UserId) -> Result<(), RoomError> {
        if sender.server_name() == self.key().server_name() {
            Ok(())
        } else {
            Err(RoomError::Forbidden(format!(
                "{sender} is not a user of this server"
            )))
        }
    }

    fn actor(&self, room_id: &RoomId) -> mpsc::Sender<pipeline::Request> {
        let mut actors = self
            .inner
            .actors
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        actors
            .entry(room_id.to_owned())
            .or_insert_with(|| {
                let (sender, receiver) = mpsc::channel(MAX_BATCH * 4);
                tokio::spawn(pipeline::run(self.clone(), room_id.to_owned(), receiver));
                sender
            })
            .clone()
    }

    pub(crate) fn forget_actor(&self, room_id: &RoomId) {
        let mut actors = self
            .inner
            .actors
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if actors.get(room_id).is_some_and(|sender| sender.is_closed()) {
            actors.remove(room_id);
        }
    }

    /// Load and parse events by id (those we have: in a room's DAG, or outliers, such as the
    /// state a remote join brought).
    pub async fn load_pdus(&self, ids: &[OwnedEventId]) -> Result<EventMap, RoomError> {
        let stored = self.store().events(ids).await?;
        let mut found: EventMap = self
            .parse_stored(&stored)?
            .into_iter()
            .map(|p| (p.owned_event_id().clone(), p))
            .collect();
        if found.len() < ids.len() {
            let missing: Vec<OwnedEventId> = ids
                .iter()
                .filter(|id| !found.contains_key(*id))
                .cloned()
                .collect();
            for outlier in self.store().outliers(&missing).await? {
                if let Some(pdu) = self.inner.pdus.get(&outlier.event_id) {
                    found.insert(outlier.event_id, pdu);
                    continue;
                }
                let rules = outlier
                    .room_version
                    .rules()
                    .ok_or_else(|| RoomError::UnsupportedVersion(outlier.room_version.clone()))?;
                let pdu = Arc::new(Pdu::from_json_str(&outlier.json, &rules)?);
                self.inner.pdus.insert(pdu.clone());
                found.insert(outlier.event_id, pdu);
            }
        }
        Ok(found)
    }

    /// Parse events already read from the store, in their order: each is parsed (and its id
    /// checked against its hash) once, then shared from the cache.
    pub fn parse_stored(
        &self,
        stored: &[hearth_store::StoredEvent],
    ) -> Result<Vec<Arc<Pdu>>, RoomError> {
        stored
            .iter()
            .map(|stored| {
                if let Some(pdu) = self.inner.pdus.get(&stored.event_id) {
                    return Ok(pdu);
                }
                let rules = stored
                    .room_version
                    .rules()
                    .ok_or_else(|| RoomError::UnsupportedVersion(stored.room_version.clone()))?;
                let pdu = Pdu::from_json_str(&stored.json, &rules)?;
                if pdu.event_id() != stored.event_id {
                    return Err(RoomError::Invalid(format!(
                        "stored event {} hashes to {}",
                        stored.event_id,
                        pdu.event_id()
                    )));
                }
                let pdu = Arc::new(pdu);
                self.inner.pdus.insert(pdu.clone());
                Ok(pdu)
            })
            .collect()
    }

    /// Share an event built here before it is stored, so that readers woken by its commit
    /// find it parsed (only ids read back from the store are looked up: see [`pdu_cache`]).
    pub(crate) fn remember_pdu(&self, pdu: Arc<Pdu>) {
        self.inner.pdus.insert(pdu);
    }

    /// Events as clients see them: client format, with redactions applied (the content pruned
    /// and `unsigned.redacted_because` set).
    pub async fn client_events(
        &self,
        pdus: &[Arc<Pdu>],
    ) -> Result<Vec<serde_json::Value>, RoomError> {
        let ids: Vec<OwnedEventId> = pdus.iter().map(|p| p.owned_event_id().clone()).collect();
        let redacted: HashMap<OwnedEventId, OwnedEventId> = self
            .store()
            .redactions_of(&ids)
            .await?
            .into_iter()
            .collect();
        let because = self
            .load_pdus(&redacted.values().cloned().collect::<Vec<_>>())
            .await?;
        let mut out = Vec::with_capacity(pdus.len());
        for pdu in pdus {
            match redacted.get(pdu.owned_event_id()) {
                Some(by) => {
                    let mut event = pdu.redacted()?.to_client_event();
                    if let Some(redaction) = because.get(by) {
                        event["unsigned"]["redacted_because"] = redaction.to_client_event();
                    }
                    out.push(event);
                }
                None => out.push(pdu.to_client_event()),
            }
        }
        Ok(out)
    }

    /// Power levels as the room's current state has them.
    pub async fn power(&self, room: &RoomId) -> Result<Power, RoomError> {
        let version = self
            .store()
            .room_head(room)
            .await?
            .ok_or_else(|| RoomError::UnknownRoom(room.to_owned()))?
            .room_version;
        let rules = version
            .rules()
            .ok_or(RoomError::UnsupportedVersion(version))?;
        let state = self.current_state(room).await?;
        let keys = [
            (StateEventType::RoomPowerLevels, String::new()),
            (StateEventType::RoomCreate, String::new()),
        ];
        let ids: Vec<_> = keys.iter().filter_map(|k| state.get(k).cloned()).collect();
        let pdus = self.load_pdus(&ids).await?;
        Ok(Power::from_state(&rules.authorization, |key| {
            state.get(key).and_then(|id| pdus.get(id)).cloned()
        }))
    }

    /// One event, if we have it.
    pub async fn pdu(&self, id: &EventId) -> Result<Option<Arc<Pdu>>, RoomError> {
        Ok(self.load_pdus(&[id.to_owned()]).await?.remove(id))
    }

    /// The room's current state.
    pub async fn current_state(&self, room_id: &RoomId) -> Result<StateIds, RoomError> {
        Ok(state::from_rows(self.store().current_state(room_id).await?))
    }

    /// The state a state group holds.
    pub async fn state_group(&self, group: i64) -> Result<StateIds, RoomError> {
        Ok(state::from_rows(self.store().state_group(group).await?))
    }

    /// The state after an event (including the event, if it is a state event).
    pub async fn state_after(&self, id: &EventId) -> Result<StateIds, RoomError> {
        let rows = self.store().state_after_event(id).await?;
        rows.map(state::from_rows)
            .ok_or_else(|| RoomError::MissingEvent(id.to_owned()))
    }

    /// The state before an event.
    pub async fn state_before(&self, id: &EventId) -> Result<StateIds, RoomError> {
        let rows = self.store().state_before_event(id).await?;
        rows.map(state::from_rows)
            .ok_or_else(|| RoomError::MissingEvent(id.to_owned()))
    }

    /// Resolve the states after the given events of one room (as when an event has several
    /// prev events). The resolution runs on a blocking thread.
    pub async fn resolve_after(
        &self,
        version: &RoomVersionId,
        ids: &[OwnedEventId],
    ) -> Result<StateIds, RoomError> {
        let mut states = Vec::with_capacity(ids.len());
        for id in ids {
            states.push(self.state_after(id).await?);
        }
        self.resolve_states(version, states, &[]).await
    }

    /// Resolve state sets of one room whose events are stored, or among `pending` (events
    /// not committed yet, such as the one being received). On a blocking thread.
    pub async fn resolve_states(
        &self,
        version: &RoomVersionId,
        states: Vec<StateIds>,
        pending: &[Arc<Pdu>],
    ) -> Result<StateIds, RoomError> {
        let rules = version
            .rules()
            .ok_or_else(|| RoomError::UnsupportedVersion(version.clone()))?;
        if states.len() == 1 {
            return Ok(states.into_iter().next().unwrap_or_default());
        }
        let pending_ids: std::collections::HashSet<&OwnedEventId> =
            pending.iter().map(|p| p.owned_event_id()).collect();
        let mut wanted: Vec<OwnedEventId> = states
            .iter()
            .flat_map(|s| s.values().cloned())
            .filter(|id| !pending_ids.contains(id))
            .collect();
        wanted.extend(
            pending
                .iter()
                .flat_map(|p| p.auth_event_ids().iter().cloned()),
        );
        wanted.extend(self.store().auth_chain(&wanted).await?);
        wanted.sort();
        wanted.dedup();
        let mut events = self.load_pdus(&wanted).await?;
        for pdu in pending {
            events.insert(pdu.owned_event_id().clone(), pdu.clone());
        }
        tokio::task::spawn_blocking(move || resolve(&rules, &states, &events))
            .await
            .map_err(|e| RoomError::StateResolution(format!("resolution task failed: {e}")))?
    }
}
