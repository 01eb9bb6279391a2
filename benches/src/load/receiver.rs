//! One user's sync loop — `/sync` v2 or simplified sliding sync — long-polls with its token on
//! its own connection and notes when each benchmark message from another user first reaches it.
//! Idle clients long-poll the same way in rooms of their own, and count what woke them.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::Instant;

use super::matrix::{Failure, Session};
use super::{Shared, SyncApi};

/// The long-poll timeout, as a real client would use it.
pub const SYNC_TIMEOUT_MS: u64 = 30_000;
/// Page size when filling a gap with /messages.
const BACKFILL_PAGE: u32 = 100;

/// What one receiver saw.
#[derive(Debug, Default)]
pub struct ReceiverStats {
    /// Send start -> first seen in this receiver's sync, for every message it saw.
    pub latencies: Vec<Duration>,
    /// When the last message reached this receiver.
    pub last_delivery: Option<Instant>,
    /// /sync responses processed after the initial sync.
    pub syncs: u64,
    /// Of those, the ones carrying at least one benchmark message.
    pub syncs_with_news: u64,
    /// Responses flagged `limited` (a gap that had to be fetched with /messages).
    pub limited: u64,
    /// Messages that arrived through /messages instead of /sync.
    pub backfilled: u64,
    /// Messages seen a second time (a server should not repeat timeline events).
    pub duplicates: u64,
}

/// How one client syncs: the API, its request, and the token to continue from.
struct SyncLoop {
    session: Session,
    api: SyncApi,
    /// v2: the filter (JSON); sliding sync: the request body.
    request: Value,
    since: String,
}

impl SyncLoop {
    /// The first request (v2: the initial sync; sliding: a new connection).
    async fn start(
        session: Session,
        api: SyncApi,
        room_limit: u32,
    ) -> anyhow::Result<(Self, Value)> {
        let request = match api {
            SyncApi::V2 => json!({
                "room": {
                    "timeline": {"limit": room_limit},
                    "state": {"lazy_load_members": true},
                },
                "presence": {"types": []},
                "account_data": {"types": []},
            }),
            // A list over every room, newest first, as Element X's room list asks.
            SyncApi::Sliding => json!({
                "conn_id": "hearth-load",
                "lists": {"all": {
                    "ranges": [[0, 19]],
                    "timeline_limit": room_limit,
                    "required_state": [["m.room.create", ""], ["m.room.member", "$LAZY"]],
                }},
            }),
        };
        let mut this = Self {
            session,
            api,
            request,
            since: String::new(),
        };
        let (_, body) = this
            .poll(0, true)
            .await
            .with_context(|| format!("first sync of {}", this.session.user_id))?;
        this.advance(&body)?;
        Ok((this, body))
    }

    async fn poll(&self, timeout_ms: u64, first: bool) -> Result<(Instant, Value), Failure> {
        let since = (!first).then_some(self.since.as_str());
        match self.api {
            SyncApi::V2 => {
                self.session
                    .sync(since, timeout_ms, &self.request.to_string())
                    .await
            }
            SyncApi::Sliding => {
                self.session
                    .sliding_sync(since, timeout_ms, &self.request)
                    .await
            }
        }
    }

    /// Take the token to continue from.
    fn advance(&mut self, body: &Value) -> anyhow::Result<()> {
        let key = match self.api {
            SyncApi::V2 => "next_batch",
            SyncApi::Sliding => "pos",
        };
        self.since = body[key]
            .as_str()
            .with_context(|| format!("sync response without {key}"))?
            .to_owned();
        Ok(())
    }

    /// A room's entry in a response (null when absent).
    fn room<'b>(&self, body: &'b Value, room: &str) -> &'b Value {
        match self.api {
            SyncApi::V2 => &body["rooms"]["join"][room],
            SyncApi::Sliding => &body["rooms"][room],
        }
    }

    /// A room entry's timeline events, its `limited` flag and where to page back from.
    fn timeline<'b>(&self, entry: &'b Value) -> (&'b [Value], bool, Option<&'b str>) {
        let (events, limited, prev) = match self.api {
            SyncApi::V2 => {
                let t = &entry["timeline"];
                (&t["events"], &t["limited"], &t["prev_batch"])
            }
            SyncApi::Sliding => (&entry["timeline"], &entry["limited"], &entry["prev_batch"]),
        };
        (
            events.as_array().map_or(&[][..], Vec::as_slice),
            limited.as_bool() == Some(true),
            prev.as_str(),
        )
    }
}

pub struct Receiver {
    user: usize,
    sync: SyncLoop,
    room: String,
    seen: Vec<bool>,
    shared: Arc<Shared>,
    stats: ReceiverStats,
}

impl Receiver {
    /// Make the initial sync (so the loop starts from "now") on a connection of its own.
    pub async fn start(
        user: usize,
        session: &Session,
        room: &str,
        shared: Arc<Shared>,
    ) -> anyhow::Result<Self> {
        let session = session.with_own_connection()?;
        let user_id = session.user_id.clone();
        let (sync, body) = SyncLoop::start(session, shared.sync, shared.timeline_limit).await?;
        if sync.room(&body, room).is_null() {
            bail!("{user_id} does not see the room {room} in its first sync");
        }
        Ok(Self {
            user,
            sync,
            room: room.to_owned(),
            seen: vec![false; shared.users * shared.messages],
            shared,
            stats: ReceiverStats::default(),
        })
    }

    /// Sync until told to stop.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) -> ReceiverStats {
        while !*stop.borrow() {
            let reply = tokio::select! {
                biased;
                _ = stop.changed() => break,
                reply = self.sync.poll(SYNC_TIMEOUT_MS, false) => reply,
            };
            match reply {
                Ok((at, body)) => {
                    self.stats.syncs += 1;
                    self.absorb(at, &body).await;
                    if let Err(e) = self.sync.advance(&body) {
                        self.shared.counters.error("sync", e);
                    }
                }
                Err(failure) => {
                    self.shared.counters.error("sync", failure.kind());
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        self.stats
    }

    async fn absorb(&mut self, at: Instant, body: &Value) {
        let entry = self.sync.room(body, &self.room);
        let (events, limited, prev_batch) = self.sync.timeline(entry);
        let prev_batch = prev_batch.map(str::to_owned);
        let mut news = 0;
        for event in events {
            match self.note(event, at) {
                Seen::New => news += 1,
                Seen::Before => self.stats.duplicates += 1,
                Seen::Own | Seen::Other => {}
            }
        }
        if limited {
            self.stats.limited += 1;
            if let Some(from) = prev_batch {
                news += self.backfill(from).await;
            }
        }
        if news > 0 {
            self.stats.syncs_with_news += 1;
        }
    }

    /// Page backwards from a limited timeline's start until we reach what we had already seen.
    async fn backfill(&mut self, mut from: String) -> u64 {
        let mut found = 0;
        loop {
            let page = self
                .sync
                .session
                .messages_before(&self.room, &from, BACKFILL_PAGE)
                .await;
            let (at, body) = match page {
                Ok(page) => page,
                Err(failure) => {
                    self.shared.counters.error("messages", failure.kind());
                    return found;
                }
            };
            let chunk = body["chunk"].as_array().cloned().unwrap_or_default();
            for event in &chunk {
                match self.note(event, at) {
                    Seen::New => {
                        found += 1;
                        self.stats.backfilled += 1;
                    }
                    // Back where the previous sync left off: the gap is filled. (The room's
                    // set-up state events all precede the benchmark's messages.)
                    Seen::Before => return found,
                    Seen::Other if event.get("state_key").is_some() => return found,
                    Seen::Own | Seen::Other => {}
                }
            }
            match body["end"].as_str() {
                Some(end) if !chunk.is_empty() => from = end.to_owned(),
                _ => return found,
            }
        }
    }

    /// Record one timeline event.
    fn note(&mut self, event: &Value, at: Instant) -> Seen {
        let tag = &event["content"]["hearth_load"];
        if tag["run"].as_str() != Some(self.shared.run.as_str()) {
            return Seen::Other;
        }
        let (Some(user), Some(seq)) = (tag["user"].as_u64(), tag["seq"].as_u64()) else {
            return Seen::Other;
        };
        let (user, seq) = (user as usize, seq as usize);
        if user == self.user {
            return Seen::Own;
        }
        if user >= self.shared.users || seq >= self.shared.messages {
            return Seen::Other;
        }
        let index = user * self.shared.messages + seq;
        if std::mem::replace(&mut self.seen[index], true) {
            return Seen::Before;
        }
        match self.shared.sent[index].get() {
            Some(sent) => self
                .stats
                .latencies
                .push(at.saturating_duration_since(*sent)),
            // The send start is stored before the request goes out, so this can't happen.
            None => self
                .shared
                .counters
                .error("sync", "message seen before it was sent"),
        }
        self.stats.last_delivery = Some(self.stats.last_delivery.map_or(at, |l| l.max(at)));
        let delivered = self.shared.delivered.fetch_add(1, Ordering::AcqRel) + 1;
        if delivered == self.shared.expected_deliveries() {
            self.shared.all_delivered.notify_one();
        }
        Seen::New
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Seen {
    /// A benchmark message from another user, first sighting.
    New,
    /// This receiver's own message.
    Own,
    /// Seen already.
    Before,
    /// Not a message of this run (room set-up, another run).
    Other,
}

/// A client that syncs and does nothing else: what each long-poll answer brought.
#[derive(Debug, Default)]
pub struct IdleStats {
    /// Long-polls answered before their timeout (woken by news, which should be rare: nothing
    /// happens in an idle client's rooms).
    pub early: u64,
    /// Long-polls that ran to their timeout.
    pub timed_out: u64,
}

/// One idle client: `SYNC_TIMEOUT_MS` long-polls until told to stop.
pub struct Idle {
    sync: SyncLoop,
    counters: Arc<super::Counters>,
}

impl Idle {
    pub async fn start(session: &Session, shared: &Shared) -> anyhow::Result<Self> {
        let session = session.with_own_connection()?;
        let (sync, _) = SyncLoop::start(session, shared.sync, 1).await?;
        Ok(Self {
            sync,
            counters: shared.counters.clone(),
        })
    }

    pub async fn run(mut self, mut stop: watch::Receiver<bool>) -> IdleStats {
        let mut stats = IdleStats::default();
        while !*stop.borrow() {
            let started = Instant::now();
            let reply = tokio::select! {
                biased;
                _ = stop.changed() => break,
                reply = self.sync.poll(SYNC_TIMEOUT_MS, false) => reply,
            };
            match reply {
                Ok((at, body)) => {
                    if at - started >= Duration::from_millis(SYNC_TIMEOUT_MS) {
                        stats.timed_out += 1;
                    } else {
                        stats.early += 1;
                    }
                    if let Err(e) = self.sync.advance(&body) {
                        self.counters.error("idle sync", e);
                    }
                }
                Err(failure) => {
                    self.counters.error("idle sync", failure.kind());
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        stats
    }
}
