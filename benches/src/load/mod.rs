//! The load generator behind `hearth-load`: N users in one room send M messages each, and every
//! user's sync loop (`/sync` v2 or sliding sync) notes when the others' messages reach it, while
//! any number of idle clients long-poll beside them. Works against any homeserver URL.

mod matrix;
mod receiver;
pub mod server;
pub mod stats;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::Context;
use reqwest::Url;
use serde_json::{Value, json};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use matrix::{Http, Session};
pub use receiver::SYNC_TIMEOUT_MS;
use receiver::{Idle, IdleStats, Receiver, ReceiverStats};
use stats::{CpuSnapshot, CpuUsage, Summary};

/// Send attempts per message for transient failures (5xx, transport), same transaction id.
const SEND_ATTEMPTS: u32 = 3;
/// Registrations/logins in flight at once (password hashing is deliberately slow).
const SETUP_PARALLELISM: usize = 8;

/// Which sync API the clients use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SyncApi {
    /// `GET /_matrix/client/v3/sync`.
    V2,
    /// Simplified sliding sync (MSC4186), as Element X syncs.
    Sliding,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    pub base: String,
    pub users: usize,
    pub messages: usize,
    /// Send requests in flight at once, over all users.
    pub concurrency: usize,
    /// Users 0..receivers run a /sync loop (all of them, normally).
    pub receivers: usize,
    /// Users are `{prefix}-{i}`.
    pub prefix: String,
    pub password: String,
    /// Log in existing users instead of registering.
    pub login: bool,
    /// How long to wait for deliveries after the last send returned.
    pub delivery_timeout: Duration,
    /// Timeline events per room per sync response. A response with more news than this is
    /// `limited`; the gap is then fetched with /messages (and counted), as a client would.
    pub timeline_limit: u32,
    /// The sync API of the receivers and the idle clients.
    pub sync: SyncApi,
    /// Idle clients: users `{prefix}-idle-{i}` in no room of the benchmark's, each long-polling
    /// on a connection of its own while the others chat.
    pub idle: usize,
}

/// Counters every task adds to.
#[derive(Debug, Default)]
pub struct Counters {
    /// 429 answers (each was waited out and retried).
    pub throttled: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
}

impl Counters {
    pub fn error(&self, phase: &str, what: impl std::fmt::Display) {
        if let Ok(mut errors) = self.errors.lock() {
            *errors.entry(format!("{phase}: {what}")).or_default() += 1;
        }
    }

    fn errors(&self) -> BTreeMap<String, u64> {
        self.errors.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

/// State shared by senders and receivers.
#[derive(Debug)]
pub struct Shared {
    /// Tags this run's messages, so nothing else in the room is mistaken for one.
    run: String,
    users: usize,
    messages: usize,
    receivers: usize,
    timeline_limit: u32,
    sync: SyncApi,
    /// When the send of message `user * messages + seq` started (set once, before the request).
    sent: Vec<OnceLock<Instant>>,
    /// Deliveries so far, over all receivers.
    delivered: AtomicUsize,
    all_delivered: Notify,
    counters: Arc<Counters>,
}

impl Shared {
    /// Every message reaches every syncing user but its sender.
    fn expected_deliveries(&self) -> usize {
        self.receivers * self.messages * (self.users - 1)
    }
}

/// What a run measured.
#[derive(Debug)]
pub struct Report {
    pub options: Options,
    pub setup: Duration,
    pub sent_ok: usize,
    pub send_failed: usize,
    /// First send start to last send response.
    pub send_wall: Duration,
    /// First send start to the last delivery, if anything was delivered.
    pub delivery_wall: Option<Duration>,
    pub send: Option<Summary>,
    pub delivery: Option<Summary>,
    pub expected_deliveries: usize,
    pub delivered: usize,
    pub receivers: ReceiverStats,
    pub idle: IdleStats,
    pub throttled: u64,
    pub errors: BTreeMap<String, u64>,
    pub cpu: Option<CpuUsage>,
}

impl Report {
    pub fn throughput(&self) -> f64 {
        self.sent_ok as f64 / self.send_wall.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    pub fn lost(&self) -> usize {
        self.expected_deliveries.saturating_sub(self.delivered)
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// The one-line machine-readable summary.
    pub fn json(&self, server: &str) -> Value {
        let r = &self.receivers;
        json!({
            "server": server,
            "users": self.options.users,
            "messages_per_user": self.options.messages,
            "concurrency": self.options.concurrency,
            "receivers": self.options.receivers,
            "messages_sent": self.sent_ok,
            "send_failed": self.send_failed,
            "send_wall_s": self.send_wall.as_secs_f64(),
            "delivery_wall_s": self.delivery_wall.map(|d| d.as_secs_f64()),
            "throughput_msg_per_s": (self.throughput() * 10.0).round() / 10.0,
            "send_latency_ms": Summary::json(self.send.as_ref()),
            "delivery_latency_ms": Summary::json(self.delivery.as_ref()),
            "deliveries_expected": self.expected_deliveries,
            "deliveries_seen": self.delivered,
            "lost": self.lost(),
            "duplicates": r.duplicates,
            "syncs": r.syncs,
            "syncs_with_news": r.syncs_with_news,
            "limited_syncs": r.limited,
            "backfilled": r.backfilled,
            "sync_api": format!("{:?}", self.options.sync).to_lowercase(),
            "idle_clients": self.options.idle,
            "idle_early_answers": self.idle.early,
            "idle_timed_out": self.idle.timed_out,
            "throttled_429": self.throttled,
            "errors": self.error_count(),
            "error_kinds": self.errors,
            "cpu": self.cpu.as_ref().map(CpuUsage::json),
        })
    }
}

/// Set up the users and the room, send, wait for the deliveries, and measure.
pub async fn run(options: Options) -> anyhow::Result<Report> {
    let base = Url::parse(&options.base).with_context(|| format!("--url {}", options.base))?;
    let counters = Arc::new(Counters::default());
    let setup_start = Instant::now();
    let names = (0..options.users).map(|user| format!("{}-{user}", options.prefix));
    let sessions = open_sessions(&options, names, &base, &counters).await?;
    let run = options.prefix.clone();
    let room = sessions[0]
        .create_public_room(&format!("hearth-load {run}"))
        .await
        .context("creating the room")?;
    let mut joins = JoinSet::new();
    for session in &sessions[1..] {
        let (session, room) = (session.clone(), room.clone());
        joins.spawn(async move {
            let joined = session.join(&room).await;
            joined.with_context(|| format!("{} joining {room}", session.user_id))
        });
    }
    while let Some(joined) = joins.join_next().await {
        joined??;
    }

    let shared = Arc::new(Shared {
        run,
        users: options.users,
        messages: options.messages,
        receivers: options.receivers,
        timeline_limit: options.timeline_limit,
        sync: options.sync,
        sent: (0..options.users * options.messages)
            .map(|_| OnceLock::new())
            .collect(),
        delivered: AtomicUsize::new(0),
        all_delivered: Notify::new(),
        counters: counters.clone(),
    });
    let mut starting = JoinSet::new();
    for (user, session) in sessions.iter().enumerate().take(options.receivers) {
        let (session, room, shared) = (session.clone(), room.clone(), shared.clone());
        starting.spawn(async move { Receiver::start(user, &session, &room, shared).await });
    }
    let (stop, stopped) = watch::channel(false);
    let mut receivers = JoinSet::new();
    while let Some(receiver) = starting.join_next().await {
        receivers.spawn(receiver??.run(stopped.clone()));
    }
    let idlers = start_idle(&options, &base, &shared, &stopped).await?;
    let setup = setup_start.elapsed();

    let cpu_before = CpuSnapshot::take();
    let start = Instant::now();
    let senders = send_all(&options, &sessions, &room, &shared).await?;
    let send_end = Instant::now();
    if shared.delivered.load(Ordering::Acquire) < shared.expected_deliveries() {
        let wait = shared.all_delivered.notified();
        let _ = tokio::time::timeout(options.delivery_timeout, wait).await;
    }
    let cpu =
        cpu_before.and_then(|before| Some(CpuSnapshot::take()?.since(&before, start.elapsed())));
    let _ = stop.send(true);
    let mut idle = IdleStats::default();
    for stats in idlers.join_all().await {
        idle.early += stats.early;
        idle.timed_out += stats.timed_out;
    }
    let mut merged = ReceiverStats::default();
    while let Some(stats) = receivers.join_next().await {
        let stats = stats?;
        merged.latencies.extend(stats.latencies);
        merged.last_delivery = merged.last_delivery.max(stats.last_delivery);
        merged.syncs += stats.syncs;
        merged.syncs_with_news += stats.syncs_with_news;
        merged.limited += stats.limited;
        merged.backfilled += stats.backfilled;
        merged.duplicates += stats.duplicates;
    }

    Ok(Report {
        setup,
        sent_ok: senders.latencies.len(),
        send_failed: senders.failed,
        send_wall: send_end - start,
        delivery_wall: merged.last_delivery.map(|last| last - start),
        send: Summary::of(senders.latencies),
        delivery: Summary::of(std::mem::take(&mut merged.latencies)),
        expected_deliveries: shared.expected_deliveries(),
        delivered: shared.delivered.load(Ordering::Acquire),
        receivers: merged,
        idle,
        throttled: counters.throttled.load(Ordering::Relaxed),
        errors: counters.errors(),
        cpu,
        options,
    })
}

/// Start the idle clients, and give their first long-polls a moment to reach the server.
async fn start_idle(
    options: &Options,
    base: &Url,
    shared: &Arc<Shared>,
    stopped: &watch::Receiver<bool>,
) -> anyhow::Result<JoinSet<IdleStats>> {
    let mut idlers = JoinSet::new();
    if options.idle == 0 {
        return Ok(idlers);
    }
    let names = (0..options.idle).map(|i| format!("{}-idle-{i}", options.prefix));
    let sessions = open_sessions(options, names, base, &shared.counters).await?;
    let mut starting = JoinSet::new();
    for session in sessions {
        let shared = shared.clone();
        starting.spawn(async move { Idle::start(&session, &shared).await });
    }
    while let Some(idle) = starting.join_next().await {
        idlers.spawn(idle??.run(stopped.clone()));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(idlers)
}

/// Register (or log in) every named user, a few at a time.
async fn open_sessions(
    options: &Options,
    names: impl Iterator<Item = String>,
    base: &Url,
    counters: &Arc<Counters>,
) -> anyhow::Result<Vec<Session>> {
    let gate = Arc::new(Semaphore::new(SETUP_PARALLELISM));
    let mut opening = JoinSet::new();
    let mut count = 0;
    for (user, localpart) in names.enumerate() {
        count += 1;
        let http = Http::new(base, counters.clone())?;
        let (password, login, gate) = (options.password.clone(), options.login, gate.clone());
        opening.spawn(async move {
            let _permit = gate.acquire_owned().await;
            let session = if login {
                http.login(&localpart, &password).await
            } else {
                match http.register(&localpart, &password).await {
                    // Left over from an earlier run with this prefix: use it.
                    Err(f) if f.errcode() == Some("M_USER_IN_USE") => {
                        http.login(&localpart, &password).await
                    }
                    other => other,
                }
            };
            let verb = if login { "logging in" } else { "registering" };
            (user, session.with_context(|| format!("{verb} {localpart}")))
        });
    }
    let mut sessions: Vec<Option<Session>> = vec![None; count];
    while let Some(opened) = opening.join_next().await {
        let (user, session) = opened?;
        sessions[user] = Some(session?);
    }
    Ok(sessions.into_iter().flatten().collect())
}

#[derive(Debug, Default)]
struct SendResults {
    latencies: Vec<Duration>,
    failed: usize,
}

/// Every user sends its messages; at most `concurrency` requests are in flight. With more
/// concurrency than users, each user sends on several lanes (each lane one message at a time).
async fn send_all(
    options: &Options,
    sessions: &[Session],
    room: &str,
    shared: &Arc<Shared>,
) -> anyhow::Result<SendResults> {
    let gate = Arc::new(Semaphore::new(options.concurrency));
    let lanes = options.concurrency.div_ceil(options.users).max(1);
    let mut tasks = JoinSet::new();
    for (user, session) in sessions.iter().enumerate() {
        for lane in 0..lanes {
            let (session, room) = (session.clone(), room.to_owned());
            let (shared, gate) = (shared.clone(), gate.clone());
            let seqs: Vec<usize> = (lane..options.messages).step_by(lanes).collect();
            tasks
                .spawn(async move { send_lane(&session, &room, user, seqs, &shared, &gate).await });
        }
    }
    let mut results = SendResults::default();
    while let Some(lane) = tasks.join_next().await {
        let lane = lane?;
        results.latencies.extend(lane.latencies);
        results.failed += lane.failed;
    }
    Ok(results)
}

async fn send_lane(
    session: &Session,
    room: &str,
    user: usize,
    seqs: Vec<usize>,
    shared: &Shared,
    gate: &Semaphore,
) -> SendResults {
    let mut results = SendResults::default();
    for seq in seqs {
        let Ok(_permit) = gate.acquire().await else {
            break;
        };
        let content = json!({
            "msgtype": "m.text",
            "body": format!("hearth-load {} {user}/{seq}", shared.run),
            "hearth_load": {"run": shared.run, "user": user, "seq": seq},
        });
        let txn = format!("{}.{user}.{seq}", shared.run);
        let start = Instant::now();
        let _ = shared.sent[user * shared.messages + seq].set(start);
        let mut attempt = 1;
        loop {
            match session.send_message(room, &txn, &content).await {
                Ok(()) => {
                    results.latencies.push(start.elapsed());
                    break;
                }
                Err(failure) => {
                    shared.counters.error("send", failure.kind());
                    if !failure.transient() || attempt == SEND_ATTEMPTS {
                        results.failed += 1;
                        break;
                    }
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
    results
}
