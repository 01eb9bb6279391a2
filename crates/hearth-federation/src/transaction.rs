//! An inbound transaction (`PUT /send/{txnId}`): at most [`MAX_PDUS`] PDUs and [`MAX_EDUS`]
//! EDUs, each handled on its own so that a bad one never fails its neighbours, and the same
//! transaction from the same origin answered once (a retry gets the first answer).
//!
//! What is built so far:
//! - PDUs go through the receipt checks of [`crate::pdu`] (format, signatures of partners,
//!   hashes) against the room's version, then into the room through its pipeline
//!   (`hearth-rooms/src/pipeline/remote.rs`: auth, state before, soft-fail, forks). One whose
//!   `prev_events` are unknown has the gap filled first with one `get_missing_events` round
//!   to the origin (at most [`GAP_LIMIT`] events); if that is not enough it is refused
//!   (fetching the state at the gap with `state_ids` is still to come).
//! - `m.direct_to_device` EDUs whose sender belongs to the origin are handed back for local
//!   delivery (each message id once); `m.typing` and `m.receipt` of the origin's users joined
//!   to the room are applied (`ephemeral.rs`); presence, device-list and signing-key updates
//!   are still to come and are ignored.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use ruma::api::federation::transactions::edu::{DirectDeviceContent, DirectDeviceMessages, Edu};
use ruma::serde::Raw;
use ruma::{OwnedEventId, OwnedServerName, OwnedTransactionId, ServerName};
use serde_json::value::RawValue;

use crate::{Federation, FederationError};

/// The spec's limits on one transaction.
pub const MAX_PDUS: usize = 50;
pub const MAX_EDUS: usize = 100;
/// The most events one gap is filled with.
const GAP_LIMIT: u16 = 20;
/// Transactions remembered for retries (and to-device message ids for deduplication).
const REMEMBERED: usize = 4_096;

/// A to-device message from a partner's user, for local delivery.
#[derive(Debug)]
pub struct InboundToDevice {
    pub sender: ruma::OwnedUserId,
    pub event_type: String,
    pub messages: DirectDeviceMessages,
}

/// What became of a transaction.
#[derive(Debug, Clone, Default)]
pub struct TransactionResult {
    /// Per PDU (those with an event id): accepted, or why not.
    pub pdus: BTreeMap<OwnedEventId, Result<(), String>>,
}

/// A transaction handled but not yet recorded as done: the caller delivers `to_device`, then
/// calls [`Federation::finish_transaction`], so that a failed delivery is retried with the
/// transaction rather than lost.
#[derive(Debug)]
pub struct Received {
    pub result: TransactionResult,
    pub to_device: Vec<InboundToDevice>,
    /// Typing changes of partners' users, for the caller's typing state.
    pub typing: Vec<crate::ephemeral::InboundTyping>,
    key: (OwnedServerName, OwnedTransactionId),
    message_ids: Vec<String>,
    /// A retry of a finished transaction: nothing to deliver or record.
    retry: bool,
    /// Marks the transaction as in progress until this is dropped.
    _in_progress: Option<InProgress>,
}

/// A transaction being handled: a retry that arrives meanwhile waits for it instead of
/// handling it a second time (and queueing its to-device messages twice).
#[derive(Debug)]
struct InProgress {
    key: (OwnedServerName, OwnedTransactionId),
    seen: std::sync::Weak<SeenShared>,
}

impl Drop for InProgress {
    fn drop(&mut self) {
        if let Some(seen) = self.seen.upgrade() {
            let notify = seen
                .in_progress
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&self.key);
            if let Some(notify) = notify {
                notify.notify_waiters();
            }
        }
    }
}

/// The transactions in progress, shared with their guards.
#[derive(Debug, Default)]
struct SeenShared {
    in_progress:
        Mutex<HashMap<(OwnedServerName, OwnedTransactionId), std::sync::Arc<tokio::sync::Notify>>>,
}

/// Transactions and to-device message ids already seen, bounded.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    transactions: Mutex<HashMap<(OwnedServerName, OwnedTransactionId), TransactionResult>>,
    messages: Mutex<HashSet<(OwnedServerName, String)>>,
    shared: std::sync::Arc<SeenShared>,
}

impl Seen {
    fn answer(&self, key: &(OwnedServerName, OwnedTransactionId)) -> Option<TransactionResult> {
        self.transactions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }

    fn remember(&self, key: (OwnedServerName, OwnedTransactionId), result: TransactionResult) {
        let mut transactions = self.transactions.lock().unwrap_or_else(|p| p.into_inner());
        if transactions.len() >= REMEMBERED {
            transactions.clear();
        }
        transactions.insert(key, result);
    }

    fn seen_message(&self, origin: &ServerName, message_id: &str) -> bool {
        self.messages
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&(origin.to_owned(), message_id.to_owned()))
    }

    fn remember_messages(&self, origin: &ServerName, ids: Vec<String>) {
        let mut messages = self.messages.lock().unwrap_or_else(|p| p.into_inner());
        if messages.len() + ids.len() >= REMEMBERED {
            messages.clear();
        }
        messages.extend(ids.into_iter().map(|id| (origin.to_owned(), id)));
    }
}

/// Why a whole transaction is refused (400).
#[derive(Debug, thiserror::Error)]
pub enum TransactionError {
    #[error("a transaction carries at most {MAX_PDUS} PDUs and {MAX_EDUS} EDUs")]
    TooLarge,
    #[error("the transaction says it is from {claimed}, but {signer} signed it")]
    WrongOrigin {
        claimed: OwnedServerName,
        signer: OwnedServerName,
    },
}

impl Federation {
    /// Handle transaction `txn_id` that `origin` signed: the answer, and the to-device
    /// messages to deliver before [`Federation::finish_transaction`] (none on a retry).
    pub async fn receive_transaction(
        &self,
        origin: &ServerName,
        claimed_origin: &ServerName,
        txn_id: OwnedTransactionId,
        pdus: &[Box<RawValue>],
        edus: &[Raw<Edu>],
    ) -> Result<Received, TransactionError> {
        if claimed_origin != origin {
            return Err(TransactionError::WrongOrigin {
                claimed: claimed_origin.to_owned(),
                signer: origin.to_owned(),
            });
        }
        if pdus.len() > MAX_PDUS || edus.len() > MAX_EDUS {
            return Err(TransactionError::TooLarge);
        }
        let key = (origin.to_owned(), txn_id);
        let in_progress = loop {
            if let Some(result) = self.inner.seen.answer(&key) {
                return Ok(Received {
                    result,
                    to_device: Vec::new(),
                    typing: Vec::new(),
                    key,
                    message_ids: Vec::new(),
                    retry: true,
                    _in_progress: None,
                });
            }
            let shared = &self.inner.seen.shared;
            let waiting = {
                let mut in_progress = shared.in_progress.lock().unwrap_or_else(|p| p.into_inner());
                match in_progress.get(&key) {
                    Some(notify) => Some(notify.clone()),
                    None => {
                        in_progress.insert(key.clone(), Default::default());
                        None
                    }
                }
            };
            match waiting {
                // The first attempt is still running: wait for its answer (or its failure,
                // after which this one handles the transaction).
                Some(notify) => {
                    let notified = notify.notified();
                    tokio::pin!(notified);
                    notified.as_mut().enable();
                    // It may have finished between the two locks: then there is nothing to
                    // wait for.
                    let still = shared
                        .in_progress
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .contains_key(&key);
                    if still {
                        let _ = tokio::time::timeout(std::time::Duration::from_secs(120), notified)
                            .await;
                    }
                }
                None => {
                    break InProgress {
                        key: key.clone(),
                        seen: std::sync::Arc::downgrade(shared),
                    };
                }
            }
        };
        let mut result = TransactionResult::default();
        for raw in pdus {
            if let Some((event_id, outcome)) = self.receive_pdu(origin, raw).await {
                result.pdus.insert(event_id, outcome);
            }
        }
        let mut to_device = Vec::new();
        let mut typing = Vec::new();
        let mut message_ids = Vec::new();
        for raw in edus {
            match raw.deserialize() {
                Ok(Edu::DirectToDevice(content)) => {
                    let id = content.message_id.to_string();
                    if message_ids.contains(&id) {
                        continue;
                    }
                    if let Some(message) = self.direct_to_device(origin, content) {
                        to_device.push(message);
                        message_ids.push(id);
                    }
                }
                Ok(Edu::Typing(content)) => {
                    if let Some(change) = self.inbound_typing(origin, content).await {
                        typing.push(change);
                    }
                }
                Ok(Edu::Receipt(content)) => self.inbound_receipts(origin, content).await,
                Ok(_) => tracing::debug!(%origin, "EDU type not handled yet; ignored"),
                Err(e) => tracing::debug!(%origin, error = %e, "malformed EDU ignored"),
            }
        }
        Ok(Received {
            result,
            to_device,
            typing,
            key,
            message_ids,
            retry: false,
            _in_progress: Some(in_progress),
        })
    }

    /// Record a transaction as done once its to-device messages are queued: a retry gets the
    /// same answer, and its messages are not queued twice.
    pub fn finish_transaction(&self, received: Received) -> TransactionResult {
        if !received.retry {
            self.inner
                .seen
                .remember_messages(&received.key.0, received.message_ids);
            self.inner
                .seen
                .remember(received.key, received.result.clone());
        }
        received.result
    }

    /// Fetch the events between the room's forward extremities and `pdu` from `origin`
    /// (`get_missing_events`, one round, at most [`GAP_LIMIT`]) and take them in, oldest
    /// first. True if any was taken in.
    async fn fill_gap(
        &self,
        origin: &ServerName,
        pdu: &hearth_rooms::Pdu,
        rules: &ruma::room_version_rules::RoomVersionRules,
    ) -> bool {
        let Ok(Some(head)) = self.inner.store.room_head(pdu.room()).await else {
            return false;
        };
        let mut request = ruma::api::federation::event::get_missing_events::v1::Request::new(
            pdu.room().to_owned(),
            head.extremities.into_iter().map(|(id, _)| id).collect(),
            vec![pdu.owned_event_id().clone()],
        );
        request.limit = GAP_LIMIT.into();
        let events = match self.client().send(origin, request).await {
            Ok(response) => response.events,
            Err(e) => {
                tracing::debug!(%origin, error = %e, "get_missing_events failed");
                return false;
            }
        };
        let mut checked = Vec::new();
        for raw in events.iter().take(usize::from(GAP_LIMIT)) {
            if let Ok(missing) = self.check_pdu(raw, rules).await
                && missing.room() == pdu.room()
            {
                checked.push(missing);
            }
        }
        // Oldest first, whatever order the partner sent them in.
        checked.sort_by_key(|p| (p.depth(), p.origin_server_ts()));
        let mut taken = false;
        for missing in checked {
            let remote = hearth_rooms::Remote {
                pdu: std::sync::Arc::new(missing),
                state_before: None,
            };
            if matches!(
                self.inner.rooms.receive(remote).await,
                Ok(hearth_rooms::Received::Accepted { .. })
            ) {
                taken = true;
            }
        }
        taken
    }

    /// One PDU: its event id (when it has one) and what became of it.
    async fn receive_pdu(
        &self,
        origin: &ServerName,
        raw: &RawValue,
    ) -> Option<(OwnedEventId, Result<(), String>)> {
        #[derive(serde::Deserialize)]
        struct RoomOf {
            room_id: ruma::OwnedRoomId,
        }
        let room = serde_json::from_str::<RoomOf>(raw.get()).ok()?.room_id;
        let head = match self.inner.store.room_head(&room).await {
            Ok(Some(head)) => head,
            Ok(None) => {
                if let Some(outcome) = self.revoked_invite(origin, &room, raw).await {
                    return Some(outcome);
                }
                tracing::debug!(%room, "PDU for a room this server is not in; ignored");
                return None;
            }
            Err(e) => {
                tracing::warn!(%room, error = %e, "cannot read the room of a PDU");
                return None;
            }
        };
        let rules = head.room_version.rules()?;
        // A server the room's ACL refuses is not heard in it.
        if !self.acl_allows(&room, origin).await.unwrap_or(false) {
            tracing::debug!(%room, %origin, "PDU from a server the room's ACL refuses; dropped");
            return None;
        }
        match self.check_pdu(raw, &rules).await {
            Ok(pdu) => {
                let id = pdu.owned_event_id().clone();
                let pdu = std::sync::Arc::new(pdu);
                let remote = hearth_rooms::Remote {
                    pdu: pdu.clone(),
                    state_before: None,
                };
                let mut received = self.inner.rooms.receive(remote.clone()).await;
                if let Err(hearth_rooms::RoomError::MissingEvent(_)) = &received
                    && self.fill_gap(origin, &pdu, &rules).await
                {
                    received = self.inner.rooms.receive(remote).await;
                }
                let outcome = match received {
                    // A soft-failed event was received as the spec says; the sender is not
                    // told apart.
                    Ok(
                        hearth_rooms::Received::Accepted { .. }
                        | hearth_rooms::Received::SoftFailed(_)
                        | hearth_rooms::Received::Known,
                    ) => Ok(()),
                    Ok(hearth_rooms::Received::Rejected(why)) => Err(format!("rejected: {why}")),
                    Err(hearth_rooms::RoomError::MissingEvent(missing)) => Err(format!(
                        "{missing} is unknown here, and the sender did not supply it"
                    )),
                    Err(e) => Err(e.to_string()),
                };
                Some((id, outcome))
            }
            Err(e) => {
                // Without a valid format there is no event id to answer under.
                let id = serde_json::from_str::<ruma::CanonicalJsonObject>(raw.get())
                    .ok()
                    .and_then(|object| hearth_rooms::Pdu::from_canonical(object, &rules).ok())
                    .map(|pdu| pdu.owned_event_id().clone())?;
                Some((id, Err(e.to_string())))
            }
        }
    }

    /// An `m.direct_to_device` EDU, if its sender is the origin's and its message id was not
    /// delivered before.
    fn direct_to_device(
        &self,
        origin: &ServerName,
        content: DirectDeviceContent,
    ) -> Option<InboundToDevice> {
        if content.sender.server_name() != origin {
            tracing::debug!(%origin, sender = %content.sender, "to-device EDU for another server's user refused");
            return None;
        }
        if self
            .inner
            .seen
            .seen_message(origin, content.message_id.as_str())
        {
            return None;
        }
        Some(InboundToDevice {
            sender: content.sender,
            event_type: content.ev_type.to_string(),
            messages: content.messages,
        })
    }
}

impl From<TransactionError> for FederationError {
    fn from(e: TransactionError) -> Self {
        FederationError::BadRequest(e.to_string())
    }
}
