//! One user's /sync loop: long-polls with its since token on its own connection and notes when
//! each benchmark message from another user first reaches it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::Instant;

use super::Shared;
use super::matrix::Session;

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

pub struct Receiver {
    user: usize,
    session: Session,
    room: String,
    filter: String,
    since: String,
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
        let filter = json!({
            "room": {
                "rooms": [room],
                "timeline": {"limit": shared.timeline_limit},
                "state": {"lazy_load_members": true},
            },
            "presence": {"types": []},
            "account_data": {"types": []},
        })
        .to_string();
        let (_, body) = session
            .sync(None, 0, &filter)
            .await
            .with_context(|| format!("initial sync of {}", session.user_id))?;
        if body["rooms"]["join"][room].is_null() {
            bail!(
                "{} does not see itself joined to {room} in its initial sync",
                session.user_id
            );
        }
        let since = body["next_batch"]
            .as_str()
            .context("initial sync without next_batch")?
            .to_owned();
        Ok(Self {
            user,
            session,
            room: room.to_owned(),
            filter,
            since,
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
                reply = self.session.sync(Some(&self.since), SYNC_TIMEOUT_MS, &self.filter) => reply,
            };
            match reply {
                Ok((at, body)) => {
                    self.stats.syncs += 1;
                    self.absorb(at, &body).await;
                    match body["next_batch"].as_str() {
                        Some(next) => self.since = next.to_owned(),
                        None => self
                            .shared
                            .counters
                            .error("sync", "response without next_batch"),
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
        let timeline = &body["rooms"]["join"][&self.room]["timeline"];
        let mut news = 0;
        for event in timeline["events"].as_array().into_iter().flatten() {
            match self.note(event, at) {
                Seen::New => news += 1,
                Seen::Before => self.stats.duplicates += 1,
                Seen::Own | Seen::Other => {}
            }
        }
        if timeline["limited"].as_bool() == Some(true) {
            self.stats.limited += 1;
            if let Some(from) = timeline["prev_batch"].as_str() {
                news += self.backfill(from.to_owned()).await;
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
