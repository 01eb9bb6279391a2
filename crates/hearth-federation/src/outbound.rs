//! Sending this server's events to partners. Federation subscribes to the pipeline's commits
//! (handlers never call it): a scanner reads each new event once and wakes the destinations
//! it concerns — the partners with joined members in its room, and the server of a user whose
//! membership it changes — and each destination has a task of its own that sends, in
//! transactions of at most 50 PDUs, everything after the position it last had confirmed
//! (kept in `federation_outbound`, so a restart or an outage carries on where it stopped).
//! A destination that fails waits (1 s, doubling, at most [`MAX_BACKOFF`]) and is retried
//! from the same position; a request from it wakes it at once. One slow or absent partner
//! never holds up another.
//!
//! Typing and read receipts ride along (`ephemeral.rs`), best effort.
//!
//! Not yet: after a long outage the whole backlog is sent (the spec lets a server send only
//! the newest events and let the partner fetch the rest with `get_missing_events`); presence,
//! to-device and device-list EDUs are not sent.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use ruma::api::federation::transactions::send_transaction_message::v1 as send_transaction;
use ruma::{OwnedServerName, OwnedTransactionId, OwnedUserId, ServerName};
use serde_json::value::RawValue;
use tokio::sync::Notify;

use crate::transaction::MAX_PDUS;
use crate::{Federation, Inner};

/// The longest a failing destination waits before the next try.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Events read per page.
const PAGE: i64 = 200;
/// How often an idle task checks that the service still exists.
const IDLE_CHECK: Duration = Duration::from_secs(30);

/// The destinations being sent to, each with what wakes it.
#[derive(Debug, Default)]
pub(crate) struct Destinations {
    wake: Mutex<HashMap<OwnedServerName, Arc<Notify>>>,
    /// Ephemeral EDUs waiting, per destination (see `ephemeral.rs`).
    pub(crate) edus: Mutex<
        HashMap<
            OwnedServerName,
            std::collections::VecDeque<
                ruma::serde::Raw<ruma::api::federation::transactions::edu::Edu>,
            >,
        >,
    >,
    txn_counter: AtomicU64,
}

impl Federation {
    /// Start sending to partners (the scanner, and a task per destination with a backlog).
    pub fn start_sending(&self) {
        let weak = Arc::downgrade(&self.inner);
        let mut commits = self.inner.rooms.subscribe();
        let start = *commits.borrow_and_update();
        let federation = self.clone();
        tokio::spawn(async move {
            // Destinations with a backlog from before the restart.
            match federation.inner.store.outbound_positions().await {
                Ok(known) => {
                    for (destination, position) in known {
                        if position < start && federation.policy().allows(&destination) {
                            federation.wake(&destination, position);
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot read federation positions"),
            }
            drop(federation);
            scan(weak, commits, start).await;
        });
    }

    /// Wake `destination`'s task (starting it if need be, from `from` if it never had a
    /// position), for instance because it just made a request to us.
    pub(crate) fn wake(&self, destination: &ServerName, from: i64) {
        let notify = {
            let mut wake = self
                .inner
                .destinations
                .wake
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some(notify) = wake.get(destination) {
                notify.clone()
            } else {
                let notify = Arc::new(Notify::new());
                wake.insert(destination.to_owned(), notify.clone());
                tokio::spawn(send_to(
                    Arc::downgrade(&self.inner),
                    destination.to_owned(),
                    notify.clone(),
                    from,
                ));
                notify
            }
        };
        notify.notify_one();
    }

    /// A partner made a request: if it is waiting out a failure, try it now.
    pub fn heard_from(&self, origin: &ServerName) {
        let notify = self
            .inner
            .destinations
            .wake
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(origin)
            .cloned();
        if let Some(notify) = notify {
            notify.notify_one();
        }
    }

    /// The partners an event concerns: those with members in its room, and the server of a
    /// user whose membership it changes (a kicked or leaving partner's user hears of it).
    /// Another server's events are its to send, except a partner's user's own join or leave:
    /// those may have come through `send_join` / `send_leave`, which only we have, so we pass
    /// them on to the room's other servers (one that had it already just ignores it).
    async fn concerned(
        &self,
        event: &hearth_store::StoredEvent,
        rooms: &mut HashMap<ruma::OwnedRoomId, Vec<OwnedServerName>>,
    ) -> Vec<OwnedServerName> {
        let own = self.policy().own_name();
        let Ok(sender) = serde_json::from_str::<Sender>(&event.json) else {
            return Vec::new();
        };
        let origin = sender.sender.server_name().to_owned();
        if origin != own {
            let own_membership = sender.kind == "m.room.member"
                && sender.state_key.as_deref() == Some(sender.sender.as_str());
            if !own_membership {
                return Vec::new();
            }
            let mut servers = self
                .inner
                .store
                .servers_in_room(&event.room_id)
                .await
                .unwrap_or_default();
            rooms.remove(&event.room_id);
            servers.retain(|s| s != own && *s != origin && self.policy().allows(s));
            return servers;
        }
        let mut servers = match rooms.get(&event.room_id) {
            Some(servers) => servers.clone(),
            None => {
                let servers = self
                    .inner
                    .store
                    .servers_in_room(&event.room_id)
                    .await
                    .unwrap_or_default();
                rooms.insert(event.room_id.clone(), servers.clone());
                servers
            }
        };
        if sender.kind == "m.room.member"
            && let Some(target) = sender.state_key.and_then(|k| OwnedUserId::try_from(k).ok())
        {
            servers.push(target.server_name().to_owned());
            // A membership change changes who is in the room.
            rooms.remove(&event.room_id);
        }
        servers.sort();
        servers.dedup();
        servers.retain(|s| s != own && self.policy().allows(s));
        servers
    }

    fn next_txn_id(&self) -> OwnedTransactionId {
        let n = self
            .inner
            .destinations
            .txn_counter
            .fetch_add(1, Ordering::Relaxed);
        let started = ruma::MilliSecondsSinceUnixEpoch::now().get();
        OwnedTransactionId::from(format!("{started}.{n}"))
    }
}

#[derive(serde::Deserialize)]
struct Sender {
    sender: OwnedUserId,
    #[serde(rename = "type")]
    kind: String,
    state_key: Option<String>,
}

/// Read each committed event once and wake the destinations it concerns.
async fn scan(weak: Weak<Inner>, mut commits: tokio::sync::watch::Receiver<i64>, mut scanned: i64) {
    while commits.changed().await.is_ok() {
        let upto = *commits.borrow_and_update();
        let Some(inner) = weak.upgrade() else { return };
        let federation = Federation { inner };
        let mut rooms = HashMap::new();
        while scanned < upto {
            let events = match federation
                .inner
                .store
                .events_between(scanned, upto, PAGE)
                .await
            {
                Ok(events) => events,
                Err(e) => {
                    tracing::warn!(error = %e, "federation: cannot read new events");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let Some(last) = events.last().map(|e| e.stream_ordering) else {
                scanned = upto;
                break;
            };
            for event in &events {
                for destination in federation.concerned(event, &mut rooms).await {
                    federation.wake(&destination, event.stream_ordering - 1);
                }
            }
            scanned = last;
        }
    }
}

/// One destination's task: send what it has not had, until the service goes away.
async fn send_to(weak: Weak<Inner>, destination: OwnedServerName, notify: Arc<Notify>, from: i64) {
    let mut position: Option<i64> = None;
    let mut backoff = Duration::from_secs(1);
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let federation = Federation { inner };
        if position.is_none() {
            position = match federation.inner.store.outbound_position(&destination).await {
                Ok(Some(known)) => Some(known),
                Ok(None) => Some(from),
                Err(e) => {
                    tracing::warn!(%destination, error = %e, "cannot read the federation position");
                    None
                }
            };
        }
        let outcome = match position {
            Some(at) => federation.send_backlog(&destination, at).await,
            None => Err(()),
        };
        drop(federation);
        let wait = match outcome {
            Ok(new) => {
                position = Some(new);
                backoff = Duration::from_secs(1);
                IDLE_CHECK
            }
            Err(()) => {
                let wait = backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                wait
            }
        };
        // Woken by news, a request from the partner, or the timer.
        let _ = tokio::time::timeout(wait, notify.notified()).await;
    }
}

impl Federation {
    /// Send `destination` its events after `position`; the position reached, or `Err` after
    /// a failure (logged), the position kept.
    async fn send_backlog(&self, destination: &ServerName, mut position: i64) -> Result<i64, ()> {
        let upto = *self.inner.rooms.subscribe().borrow();
        let mut rooms = HashMap::new();
        while position < upto {
            let events = self
                .inner
                .store
                .events_between(position, upto, PAGE)
                .await
                .map_err(
                    |e| tracing::warn!(%destination, error = %e, "cannot read events to send"),
                )?;
            let Some(last) = events.last().map(|e| e.stream_ordering) else {
                break;
            };
            let mut relevant = Vec::new();
            for event in &events {
                if self
                    .concerned(event, &mut rooms)
                    .await
                    .iter()
                    .any(|s| s == destination)
                {
                    relevant.push(event.clone());
                }
            }
            // As partners may see them: redacted if a redaction of them was applied since.
            let parsed = self.inner.rooms.parse_stored(&relevant).map_err(
                |e| tracing::warn!(%destination, error = %e, "cannot parse events to send"),
            )?;
            let raws = self.as_sent(&parsed).await.map_err(
                |e| tracing::warn!(%destination, error = %e, "cannot prepare events to send"),
            )?;
            let pdus: Vec<(i64, Box<RawValue>)> = relevant
                .iter()
                .map(|e| e.stream_ordering)
                .zip(raws)
                .collect();
            for chunk in pdus.chunks(MAX_PDUS) {
                let mut request = send_transaction::Request::new(
                    self.next_txn_id(),
                    self.policy().own_name().to_owned(),
                    ruma::MilliSecondsSinceUnixEpoch::now(),
                );
                request.pdus = chunk.iter().map(|(_, raw)| raw.clone()).collect();
                match self.client().send(destination, request).await {
                    Ok(response) => {
                        for (id, result) in response.pdus {
                            if let Err(why) = result {
                                tracing::debug!(%destination, event = %id, why, "partner refused an event");
                            }
                        }
                    }
                    // A partner that refuses the transaction itself will refuse it again:
                    // move past it rather than stall everything after it.
                    Err(crate::FederationError::Remote {
                        status, ref body, ..
                    }) if status.is_client_error()
                            && status != http::StatusCode::TOO_MANY_REQUESTS
                            && status != http::StatusCode::REQUEST_TIMEOUT
                            // Our key may just not have reached it yet.
                            && status != http::StatusCode::UNAUTHORIZED =>
                    {
                        tracing::warn!(%destination, %status, body, "partner refused a transaction; skipped");
                    }
                    Err(e) => {
                        tracing::info!(%destination, error = %e, "sending failed; will retry");
                        return Err(());
                    }
                }
                if let Some((stream, _)) = chunk.last() {
                    self.save_position(destination, *stream).await?;
                }
            }
            self.save_position(destination, last).await?;
            position = last;
        }
        // Ephemeral news last, best effort: what cannot be delivered now is not worth
        // delivering later.
        let edus = self.take_edus(destination, crate::transaction::MAX_EDUS);
        if !edus.is_empty() {
            let mut request = send_transaction::Request::new(
                self.next_txn_id(),
                self.policy().own_name().to_owned(),
                ruma::MilliSecondsSinceUnixEpoch::now(),
            );
            request.edus = edus;
            if let Err(e) = self.client().send(destination, request).await {
                // Dropped, not retried; the events above are sent and their position saved.
                tracing::debug!(%destination, error = %e, "ephemeral news not delivered");
            }
        }
        Ok(position)
    }

    async fn save_position(&self, destination: &ServerName, position: i64) -> Result<(), ()> {
        self.inner
            .store
            .set_outbound_position(destination, position)
            .await
            .map_err(
                |e| tracing::warn!(%destination, error = %e, "cannot save the federation position"),
            )
    }
}
