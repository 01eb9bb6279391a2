//! The one append pipeline.
//!
//! Every room has one actor task that owns the room's head (forward extremities, current state,
//! current state group). Appends to a room queue on its actor, so no two appends to one room race.
//! The actor takes everything queued, builds the events one after another on its working copy of
//! the head (each event's prev event is the one before it), authorises each, and hands the whole
//! batch to the store's writer as one atomic room batch. Only when that commit is durable does it
//! adopt the new head and answer the callers. A failed commit leaves the head as it was.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use hearth_store::{NewEvent, NewRelation, NewStateGroup, RoomBatch, StateDelta, TxnKey};
use ruma::events::{StateEventType, TimelineEventType};
use ruma::room_version_rules::RoomVersionRules;
use ruma::{MilliSecondsSinceUnixEpoch, OwnedEventId, OwnedRoomId, OwnedUserId, RoomVersionId};
use tokio::sync::{mpsc, oneshot};

use crate::build::{Frame, build};
use crate::state::row_key;
use crate::{EventDraft, Pdu, Power, RoomError, RoomState, Rooms, auth, relations, restricted};

mod remote;

pub use remote::{Received, Remote};

/// The most appends one actor folds into one commit.
pub const MAX_BATCH: usize = 256;

/// The most `prev_events` a local event names: enough to join the branches a few partners
/// make, few enough to keep events small; the rest are joined by the events after it.
pub const MAX_PREV_EVENTS: usize = 10;

/// A state group gets a full snapshot instead of a delta once its chain of ancestors is this
/// long, so that loading any state walks a bounded chain.
pub const MAX_DELTA_CHAIN: i64 = 100;

/// A local event to append.
#[derive(Debug, Clone)]
pub struct Append {
    pub sender: OwnedUserId,
    pub draft: EventDraft,
    /// Makes the append idempotent: a retry with the same key gets the first event back.
    pub txn: Option<TxnKey>,
}

/// The outcome of an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub event_id: OwnedEventId,
    /// The event's position in the global stream.
    pub stream: i64,
    /// True when the transaction id had already produced this event.
    pub duplicate: bool,
}

pub(crate) type Reply = oneshot::Sender<Result<Appended, RoomError>>;
pub(crate) type RemoteReply = oneshot::Sender<Result<Received, RoomError>>;
pub(crate) type PreparedReply = oneshot::Sender<Result<Arc<Pdu>, RoomError>>;
pub(crate) type CommitReply = oneshot::Sender<Result<Vec<i64>, RoomError>>;

/// The work a room's actor takes: a local append (built here), another server's event
/// (already checked for format, signatures and hashes) to take in, or a local event built and
/// authorised on the current head but not committed (an invite, which the invitee's server
/// signs before it is sent in as a remote event).
pub(crate) enum Request {
    Local(Append, Reply),
    Remote(Remote, RemoteReply),
    Prepare(Append, PreparedReply),
    /// A room batch made elsewhere that replaces the room's head (a rejoin over federation:
    /// the resident server's state and our join), committed by the actor so that no append
    /// races it; the actor reads its head again afterwards.
    Commit(Box<RoomBatch>, Vec<Arc<Pdu>>, CommitReply),
}

/// A room's head: all an append needs to know about the room.
pub(crate) struct Head {
    pub room_id: OwnedRoomId,
    pub version: RoomVersionId,
    pub rules: RoomVersionRules,
    pub extremities: Vec<Arc<Pdu>>,
    pub state_group: i64,
    pub chain_len: i64,
    pub state: RoomState,
}

impl Head {
    pub(crate) async fn load(rooms: &Rooms, room_id: &OwnedRoomId) -> Result<Self, RoomError> {
        let store = rooms.store();
        let row = store
            .room_head(room_id)
            .await?
            .ok_or_else(|| RoomError::UnknownRoom(room_id.clone()))?;
        let rules = row
            .room_version
            .rules()
            .ok_or_else(|| RoomError::UnsupportedVersion(row.room_version.clone()))?;
        let state_ids = crate::state::from_rows(store.state_group(row.current_state_group).await?);
        let mut wanted: Vec<OwnedEventId> = state_ids.values().cloned().collect();
        wanted.extend(row.extremities.iter().map(|(id, _)| id.clone()));
        let pdus = rooms.load_pdus(&wanted).await?;
        let get = |id: &OwnedEventId| {
            pdus.get(id)
                .cloned()
                .ok_or_else(|| RoomError::MissingEvent(id.clone()))
        };
        let state = state_ids
            .iter()
            .map(|(k, id)| Ok((k.clone(), get(id)?)))
            .collect::<Result<_, RoomError>>()?;
        let extremities = row
            .extremities
            .iter()
            .map(|(id, _)| get(id))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            room_id: room_id.clone(),
            version: row.room_version.clone(),
            rules,
            extremities,
            state_group: row.current_state_group,
            chain_len: row.current_chain_len,
            state,
        })
    }
}

/// What became of one request in a batch.
enum Outcome {
    /// The `n`th event of the batch.
    New(usize),
    /// A retry of the transaction that made the `n`th event of this batch.
    Retry(usize),
    /// A retry of a transaction that is already stored.
    Stored(OwnedEventId),
    Failed(RoomError),
    /// What became of a remote event that is not the batch's `n`th event.
    Remote(Received),
    /// A prepared event, built apart from the batch.
    Prepared,
}

/// The head as the batch changes it, kept apart from the real head until the commit succeeds.
struct Working<'h> {
    head: &'h Head,
    extremities: Vec<Arc<Pdu>>,
    state_group: i64,
    chain_len: i64,
    overlay: RoomState,
    groups: Vec<NewStateGroup>,
    events: Vec<NewEvent>,
    pdus: Vec<Arc<Pdu>>,
    txns: HashMap<TxnKey, usize>,
    /// The batch's last membership change per user.
    memberships: BTreeMap<OwnedUserId, (String, OwnedEventId)>,
    /// (redacted event, redaction) pairs the batch applies.
    redactions: Vec<(OwnedEventId, OwnedEventId)>,
    /// Relations the batch's events declare, for the relations index.
    relations: Vec<NewRelation>,
    /// Remote events the batch keeps apart from the DAG (rejected, soft-failed).
    apart: Vec<hearth_store::ApartEvent>,
}

impl<'h> Working<'h> {
    fn new(head: &'h Head) -> Self {
        Self {
            head,
            extremities: head.extremities.clone(),
            state_group: head.state_group,
            chain_len: head.chain_len,
            overlay: RoomState::new(),
            groups: Vec::new(),
            events: Vec::new(),
            pdus: Vec::new(),
            txns: HashMap::new(),
            memberships: BTreeMap::new(),
            redactions: Vec::new(),
            relations: Vec::new(),
            apart: Vec::new(),
        }
    }

    fn get(&self, key: &(StateEventType, String)) -> Option<Arc<Pdu>> {
        self.overlay
            .get(key)
            .or_else(|| self.head.state.get(key))
            .cloned()
    }

    /// The state as of the working head (only materialised for snapshots and auth lookups).
    fn full_state(&self) -> RoomState {
        let mut state = self.head.state.clone();
        state.extend(self.overlay.iter().map(|(k, v)| (k.clone(), v.clone())));
        state
    }

    /// `target` is the event a redaction names, loaded beforehand (the pipeline is synchronous
    /// here).
    fn add(
        &mut self,
        rooms: &Rooms,
        request: &Append,
        target: Option<&Pdu>,
    ) -> Result<usize, RoomError> {
        let rules = &self.head.rules;
        let draft = &request.draft;
        draft.check_limits()?;
        let content = serde_json::value::to_raw_value(&draft.content)
            .map_err(|e| RoomError::Invalid(format!("content: {e}")))?;
        let auth_keys = auth::auth_types(
            &draft.kind,
            &request.sender,
            draft.state_key.as_deref(),
            &content,
            &rules.authorization,
        )?;
        let auth_events: Vec<Arc<Pdu>> = auth_keys.iter().filter_map(|k| self.get(k)).collect();
        // All forward extremities, up to a cap (the newest first): one event joins the
        // branches other servers made, and those beyond the cap are joined by the next.
        let mut prev: Vec<&Pdu> = self.extremities.iter().map(|p| p.as_ref()).collect();
        prev.sort_by_key(|p| std::cmp::Reverse(p.depth()));
        prev.truncate(MAX_PREV_EVENTS);
        let depth = prev
            .iter()
            .map(|p| p.depth())
            .max()
            .unwrap_or(0)
            .saturating_add(1)
            // A partner's event may be as deep as canonical JSON allows: never deeper.
            .min(crate::pdu::MAX_DEPTH);
        let auth_refs: Vec<&Pdu> = auth_events.iter().map(|p| p.as_ref()).collect();
        let frame = Frame {
            rules,
            room_id: Some(&self.head.room_id),
            key: rooms.key(),
        };
        let pdu = build(
            &frame,
            draft,
            &request.sender,
            &prev,
            &auth_refs,
            depth,
            MilliSecondsSinceUnixEpoch::now(),
        )?;
        auth::check(&rules.authorization, &pdu, &auth_events, |kind, key| {
            self.get(&(kind.clone(), key.to_owned()))
        })?;

        let redaction = self.check_redaction(&pdu, target)?;
        let pdu = Arc::new(pdu);
        if let Some(redacted) = redaction {
            self.redactions
                .push((redacted, pdu.owned_event_id().clone()));
        }
        let before = self.state_group;
        if let Some(key) = draft
            .state_key
            .as_ref()
            .map(|k| (draft.kind.to_string().into(), k.clone()))
        {
            self.overlay.insert(key, pdu.clone());
            let id = rooms.store().allocate_state_group();
            let (parent, chain_len, delta) = if self.chain_len + 1 >= MAX_DELTA_CHAIN {
                let full: Vec<StateDelta> = self
                    .full_state()
                    .iter()
                    .map(|(k, p)| (row_key(k), Some(p.owned_event_id().clone())))
                    .collect();
                (None, 0, full)
            } else {
                let key = (
                    draft.kind.to_string(),
                    draft.state_key.clone().unwrap_or_default(),
                );
                (
                    Some(before),
                    self.chain_len + 1,
                    vec![(key, Some(pdu.owned_event_id().clone()))],
                )
            };
            self.groups.push(NewStateGroup {
                id,
                parent,
                chain_len,
                delta,
            });
            self.state_group = id;
            self.chain_len = chain_len;
        }
        self.events
            .push(pdu.new_event(before, self.state_group, request.txn.clone()));
        if *pdu.kind() == TimelineEventType::RoomMember
            && let (Some(user), Some(membership)) = (
                pdu.state_key().and_then(|k| OwnedUserId::try_from(k).ok()),
                pdu.membership(),
            )
        {
            self.memberships
                .insert(user, (membership, pdu.owned_event_id().clone()));
        }
        if let Some(relation) = relations::new_relation(pdu.owned_event_id(), &draft.content) {
            self.relations.push(relation);
        }
        let joined: Vec<OwnedEventId> = pdu.prev_event_ids().to_vec();
        self.extremities
            .retain(|e| !joined.contains(e.owned_event_id()));
        self.extremities.push(pdu.clone());
        self.pdus.push(pdu);
        let index = self.events.len() - 1;
        if let Some(txn) = &request.txn {
            self.txns.insert(txn.clone(), index);
        }
        Ok(index)
    }
}

impl Working<'_> {
    /// The room batch of what was added, taken out of the working copy (which keeps the new
    /// head: extremities, state group and state).
    fn take_batch(&mut self, creates_room: bool) -> RoomBatch {
        RoomBatch {
            room_id: self.head.room_id.clone(),
            room_version: self.head.version.clone(),
            creates_room,
            state_groups: std::mem::take(&mut self.groups),
            events: std::mem::take(&mut self.events),
            forward_extremities: self
                .extremities
                .iter()
                .map(|p| p.owned_event_id().clone())
                .collect(),
            current_state_group: self.state_group,
            current_state: self
                .overlay
                .iter()
                .map(|(k, p)| (row_key(k), p.owned_event_id().clone()))
                .collect(),
            redactions: std::mem::take(&mut self.redactions),
            relations: std::mem::take(&mut self.relations),
            apart: std::mem::take(&mut self.apart),
            memberships: std::mem::take(&mut self.memberships)
                .into_iter()
                .map(|(user, (membership, id))| (user, membership, id))
                .collect(),
        }
    }

    /// The state event in force, when a request would send it again unchanged (same sender,
    /// same content): setting identical state twice, or joining twice, answers with the event
    /// in force instead of a new one. Only committed state counts (an event of this batch has
    /// no stream position to answer with yet).
    fn unchanged_state(&self, request: &Append) -> Option<OwnedEventId> {
        let draft = &request.draft;
        let key = (
            StateEventType::from(draft.kind.to_string()),
            draft.state_key.clone()?,
        );
        if self.overlay.contains_key(&key) {
            return None;
        }
        let current = self.head.state.get(&key)?;
        if current.sender() != request.sender {
            return None;
        }
        (current.content_json() == draft.content).then(|| current.owned_event_id().clone())
    }

    /// The auth rules let any member send a redaction (from room version 3); the client-server
    /// API only applies it — and Hearth only accepts it from its users — when the sender wrote
    /// the target or has the `redact` power level.
    fn check_redaction(
        &self,
        pdu: &Pdu,
        target: Option<&Pdu>,
    ) -> Result<Option<OwnedEventId>, RoomError> {
        use ruma::state_res::Event;
        let Some(target_id) = pdu.redacts() else {
            return Ok(None);
        };
        let Some(target) = target.filter(|t| t.event_id() == target_id && t.room() == pdu.room())
        else {
            return Err(RoomError::MissingEvent(target_id.clone()));
        };
        if target.sender() != pdu.sender() {
            let power = Power::from_state(&self.head.rules.authorization, |k| self.get(k));
            if power.user(pdu.sender()) < power.action("redact") {
                return Err(RoomError::Forbidden(
                    "redacting another user's event needs the redact power level".into(),
                ));
            }
        }
        Ok(Some(target_id.clone()))
    }
}

/// The event a draft would redact, wherever the room version puts it.
fn redaction_target(draft: &EventDraft) -> Option<OwnedEventId> {
    if draft.kind != TimelineEventType::RoomRedaction {
        return None;
    }
    draft.redacts.clone().or_else(|| {
        draft
            .content
            .get("redacts")
            .and_then(|v| v.as_str())
            .and_then(|s| OwnedEventId::try_from(s).ok())
    })
}

/// The actor of one room: runs until every sender is gone or the room turns out not to exist.
pub(crate) async fn run(rooms: Rooms, room_id: OwnedRoomId, mut requests: mpsc::Receiver<Request>) {
    let mut loaded: Option<Head> = None;
    let mut queue = Vec::with_capacity(MAX_BATCH);
    while requests.recv_many(&mut queue, MAX_BATCH).await > 0 {
        if loaded.is_none() {
            match Head::load(&rooms, &room_id).await {
                Ok(head) => loaded = Some(head),
                Err(e) => {
                    for work in queue.drain(..) {
                        fail(work, &e);
                    }
                    if matches!(e, RoomError::UnknownRoom(_)) {
                        // Don't keep an actor alive for a room that doesn't exist.
                        rooms.forget_actor(&room_id);
                        return;
                    }
                    continue;
                }
            }
        }
        // Whole batches first: each replaces the head, which is then read again.
        let (commits, rest): (Vec<Request>, Vec<Request>) = queue
            .drain(..)
            .partition(|r| matches!(r, Request::Commit(..)));
        queue = rest;
        if !commits.is_empty() {
            for commit in commits {
                if let Request::Commit(batch, pdus, reply) = commit {
                    for pdu in pdus {
                        rooms.remember_pdu(pdu);
                    }
                    let committed = rooms.store().persist(*batch).await;
                    let _ = reply.send(committed.map_err(RoomError::from));
                }
            }
            loaded = None;
            if queue.is_empty() {
                continue;
            }
            match Head::load(&rooms, &room_id).await {
                Ok(head) => loaded = Some(head),
                Err(e) => {
                    for work in queue.drain(..) {
                        fail(work, &e);
                    }
                    continue;
                }
            }
        }
        let Some(head) = loaded.as_mut() else {
            continue;
        };
        if !append_batch(&rooms, head, &mut queue).await {
            // A failed commit may still have committed (the database has the last word), so
            // the head is read again rather than trusted.
            loaded = None;
        }
    }
}

/// Answer a request with an error.
fn fail(work: Request, e: &RoomError) {
    match work {
        Request::Local(_, reply) => {
            let _ = reply.send(Err(e.clone()));
        }
        Request::Remote(_, reply) => {
            let _ = reply.send(Err(e.clone()));
        }
        Request::Prepare(_, reply) => {
            let _ = reply.send(Err(e.clone()));
        }
        Request::Commit(_, _, reply) => {
            let _ = reply.send(Err(e.clone()));
        }
    }
}

/// Returns false when the commit failed.
async fn append_batch(rooms: &Rooms, head: &mut Head, queue: &mut Vec<Request>) -> bool {
    let mut working = Working::new(head);
    let mut outcomes = Vec::with_capacity(queue.len());
    for work in queue.iter() {
        let request = match work {
            Request::Local(request, _) => request,
            Request::Remote(remote, _) => {
                outcomes.push(match working.add_remote(rooms, remote).await {
                    Ok(Received::Accepted { .. }) => Outcome::New(working.events.len() - 1),
                    Ok(other) => Outcome::Remote(other),
                    Err(e) => Outcome::Failed(e),
                });
                continue;
            }
            // Answered below, from the head as it was before this batch (commits never get
            // here: the actor takes them first).
            Request::Prepare(..) | Request::Commit(..) => {
                outcomes.push(Outcome::Prepared);
                continue;
            }
        };
        let outcome = match &request.txn {
            Some(txn) if working.txns.contains_key(txn) => Outcome::Retry(working.txns[txn]),
            Some(txn) => match rooms.store().txn_event(txn).await {
                Ok(Some(id)) => Outcome::Stored(id),
                Ok(None) => added(add_with_target(rooms, &mut working, request).await),
                Err(e) => Outcome::Failed(e.into()),
            },
            None => match working.unchanged_state(request) {
                Some(id) => Outcome::Stored(id),
                None => added(add_with_target(rooms, &mut working, request).await),
            },
        };
        outcomes.push(outcome);
    }

    let committed = if working.events.is_empty() && working.apart.is_empty() {
        Ok(Vec::new())
    } else {
        let batch = working.take_batch(false);
        for pdu in &working.pdus {
            rooms.remember_pdu(pdu.clone());
        }
        rooms.store().persist(batch).await.map_err(RoomError::from)
    };
    let pdus = std::mem::take(&mut working.pdus);
    if committed.is_ok() {
        let Working {
            extremities,
            state_group,
            chain_len,
            overlay,
            ..
        } = working;
        head.extremities = extremities;
        head.state_group = state_group;
        head.chain_len = chain_len;
        head.state.extend(overlay);
    }

    for (work, outcome) in queue.drain(..).zip(outcomes) {
        let reply = match work {
            Request::Local(_, reply) => reply,
            Request::Commit(_, _, reply) => {
                let _ = reply.send(Err(RoomError::Invalid("a batch in an append batch".into())));
                continue;
            }
            Request::Prepare(request, reply) => {
                let mut scratch = Working::new(head);
                let built = scratch
                    .add(rooms, &request, None)
                    .map(|i| scratch.pdus[i].clone());
                let _ = reply.send(built);
                continue;
            }
            Request::Remote(_, reply) => {
                let answer = match (outcome, &committed) {
                    (_, Err(e)) => Err(e.clone()),
                    (Outcome::New(i), Ok(positions)) => Ok(Received::Accepted {
                        stream: positions[i],
                    }),
                    (Outcome::Remote(received), Ok(_)) => Ok(received),
                    (Outcome::Failed(e), Ok(_)) => Err(e),
                    (Outcome::Retry(_) | Outcome::Stored(_), Ok(_)) => Ok(Received::Known),
                    (Outcome::Prepared, Ok(_)) => Err(RoomError::Invalid(
                        "a remote event answered as prepared".into(),
                    )),
                };
                let _ = reply.send(answer);
                continue;
            }
        };
        let answer = match (outcome, &committed) {
            (Outcome::New(i), Ok(positions)) => Ok(Appended {
                event_id: pdus[i].owned_event_id().clone(),
                stream: positions[i],
                duplicate: false,
            }),
            (Outcome::Retry(i), Ok(positions)) => Ok(Appended {
                event_id: pdus[i].owned_event_id().clone(),
                stream: positions[i],
                duplicate: true,
            }),
            (Outcome::New(_) | Outcome::Retry(_), Err(e)) => Err(e.clone()),
            (Outcome::Stored(id), _) => match rooms.store().event(&id).await {
                Ok(Some(stored)) => Ok(Appended {
                    event_id: id,
                    stream: stored.stream_ordering,
                    duplicate: true,
                }),
                Ok(None) => Err(RoomError::MissingEvent(id)),
                Err(e) => Err(e.into()),
            },
            (Outcome::Failed(e), _) => Err(e),
            (Outcome::Remote(_) | Outcome::Prepared, _) => Err(RoomError::Invalid(
                "a local append answered as remote".into(),
            )),
        };
        let _ = reply.send(answer);
    }
    committed.is_ok()
}

async fn add_with_target(
    rooms: &Rooms,
    working: &mut Working<'_>,
    request: &Append,
) -> Result<usize, RoomError> {
    // The target may be an event of this very batch, not stored yet.
    let target = match redaction_target(&request.draft) {
        Some(id) => match working.pdus.iter().find(|p| p.event_id() == id) {
            Some(pending) => Some(Arc::clone(pending)),
            None => rooms.pdu(&id).await?,
        },
        None => None,
    };
    // Only thread replies pay for this lookup.
    if let Some(root) = relations::thread_parent(&request.draft.kind, &request.draft.content) {
        relations::check_thread_root(rooms.pdu(&root).await?.as_deref())?;
    }
    if is_own_join(request) {
        let join = restricted::check_join(
            rooms,
            &working.head.rules.authorization,
            &working.head.room_id,
            &request.sender,
            |key| working.get(key),
        )
        .await?;
        let mut vouched = request.clone();
        restricted::vouch(&mut vouched.draft.content, &join);
        return working.add(rooms, &vouched, target.as_deref());
    }
    working.add(rooms, request, target.as_deref())
}

/// A user's own join: the one membership change Hearth may have to vouch for.
fn is_own_join(request: &Append) -> bool {
    let draft = &request.draft;
    draft.kind == TimelineEventType::RoomMember
        && draft.state_key.as_deref() == Some(request.sender.as_str())
        && draft.content.get("membership").and_then(|m| m.as_str()) == Some("join")
}

fn added(result: Result<usize, RoomError>) -> Outcome {
    match result {
        Ok(i) => Outcome::New(i),
        Err(e) => Outcome::Failed(e),
    }
}

/// A new room, committed whole: its create event (built and authorised, with its state
/// group) and the events that follow it (`initial`, built in order on the new head), in one
/// room batch. Any event refused refuses the room: nothing of it is stored.
///
/// No actor is involved: until the batch commits the room does not exist, so nothing else
/// can append to it; the first append afterwards starts its actor, which loads the head.
pub(crate) async fn genesis(
    rooms: &Rooms,
    head: Head,
    create: NewEvent,
    create_group: NewStateGroup,
    initial: &[Append],
) -> Result<Vec<Appended>, RoomError> {
    let create_pdu = head
        .extremities
        .first()
        .cloned()
        .ok_or_else(|| RoomError::Invalid("a new room starts with its create event".into()))?;
    let mut working = Working::new(&head);
    for request in initial {
        rooms.check_local(&request.sender)?;
        add_with_target(rooms, &mut working, request).await?;
    }
    let mut batch = working.take_batch(true);
    batch.state_groups.insert(0, create_group);
    batch.current_state.push((
        row_key(&(StateEventType::RoomCreate, String::new())),
        create.event_id.clone(),
    ));
    batch.events.insert(0, create);
    let pdus: Vec<Arc<Pdu>> = std::iter::once(create_pdu)
        .chain(working.pdus.iter().cloned())
        .collect();
    for pdu in &pdus {
        rooms.remember_pdu(pdu.clone());
    }
    let positions = rooms.store().persist(batch).await?;
    Ok(pdus
        .iter()
        .zip(positions)
        .map(|(pdu, stream)| Appended {
            event_id: pdu.owned_event_id().clone(),
            stream,
            duplicate: false,
        })
        .collect())
}
