//! Presence: whether a user is online, unavailable (idle) or offline, and their status message.
//!
//! Kept in memory, like typing. A user's first sync (with `set_presence` `online` or
//! `unavailable`) brings them from offline to that state; they go offline
//! [`SYNC_ONLINE_TIMEOUT`] after their last sync ended. Sending an event is activity: it sets
//! the user online and `currently_active`; [`ACTIVE_WINDOW`] after their last activity that is
//! announced as `currently_active: false`, and after [`IDLE_TIMEOUT`] they become unavailable
//! (spec: "Idle timeout"). Syncs never lower a state, so two devices syncing with different
//! settings cannot flip it back and forth. `PUT /presence/{userId}/status` sets the state and
//! status message directly.
//!
//! After a restart everybody starts offline until their clients sync again, and status
//! messages set before it are gone (NOTSPEC: the spec does not say how long presence lives).
//! Every change takes a new serial, which sync tokens carry, and wakes syncing clients through
//! the store's change notifier.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ruma::presence::PresenceState;
use ruma::{OwnedUserId, UserId};
use serde_json::{Value, json};

/// How long a user stays present after their last sync ended.
pub const SYNC_ONLINE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long after their last activity (sending, setting themselves online) a user is
/// `currently_active`.
pub const ACTIVE_WINDOW: Duration = Duration::from_secs(60);

/// How long after their last activity an online user becomes unavailable.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// How often lapsed syncs and idle users are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// Users kept at most; offline users without a status message go first.
const MAX_USERS: usize = 100_000;

#[derive(Debug)]
struct Entry {
    state: PresenceState,
    status_msg: Option<String>,
    last_active: Instant,
    /// `currently_active` as last announced.
    active: bool,
    /// Syncs of the user running now that keep them present, and when the last one ended.
    syncs: u32,
    last_sync: Option<Instant>,
    /// The serial of the entry's last announced change.
    serial: u64,
}

impl Entry {
    /// What clients see, to tell announced changes from silent ones.
    fn visible(&self) -> (PresenceState, Option<String>, bool) {
        (self.state.clone(), self.status_msg.clone(), self.active)
    }
}

#[derive(Debug, Default)]
struct Inner {
    serial: u64,
    users: HashMap<OwnedUserId, Entry>,
}

impl Inner {
    fn entry(&mut self, user: &UserId) -> &mut Entry {
        if self.users.len() >= MAX_USERS && !self.users.contains_key(user) {
            self.users
                .retain(|_, e| e.state != PresenceState::Offline || e.status_msg.is_some());
        }
        self.users.entry(user.to_owned()).or_insert_with(|| Entry {
            state: PresenceState::Offline,
            status_msg: None,
            last_active: Instant::now(),
            active: false,
            syncs: 0,
            last_sync: None,
            serial: 0,
        })
    }

    /// Change the user's entry; announce it (a new serial) if what clients see changed.
    fn update(&mut self, user: &UserId, change: impl FnOnce(&mut Entry)) -> bool {
        let entry = self.entry(user);
        let before = entry.visible();
        change(entry);
        if entry.visible() == before {
            return false;
        }
        self.serial += 1;
        let serial = self.serial;
        self.entry(user).serial = serial;
        true
    }
}

/// Whether a presence value is one the spec defines.
pub fn is_known(state: &PresenceState) -> bool {
    matches!(
        state,
        PresenceState::Online | PresenceState::Unavailable | PresenceState::Offline
    )
}

/// Everyone's presence.
#[derive(Clone)]
pub struct Presence {
    inner: Arc<Mutex<Inner>>,
    announce: Announce,
}

/// Wakes the syncs that see these users' presence (the store's `publish_to_roommates`).
type Announce = Arc<dyn Fn(Vec<OwnedUserId>) + Send + Sync>;

impl std::fmt::Debug for Presence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presence").finish_non_exhaustive()
    }
}

/// A running sync that keeps its user present; dropping it ends that.
#[derive(Debug)]
pub struct Syncing {
    presence: Option<(Presence, OwnedUserId)>,
}

impl Drop for Syncing {
    fn drop(&mut self) {
        if let Some((presence, user)) = self.presence.take() {
            let mut inner = presence.lock();
            let entry = inner.entry(&user);
            entry.syncs = entry.syncs.saturating_sub(1);
            entry.last_sync = Some(Instant::now());
        }
    }
}

impl Presence {
    /// Also starts the task that takes users offline when their syncs lapse (so call it inside
    /// the runtime).
    pub fn new(announce: impl Fn(Vec<OwnedUserId>) + Send + Sync + 'static) -> Self {
        // Serials start at the clock, as typing's do: tokens from before a restart stay behind.
        let epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let presence = Self {
            inner: Arc::new(Mutex::new(Inner {
                serial: epoch,
                users: HashMap::new(),
            })),
            announce: Arc::new(announce),
        };
        let weak = Arc::downgrade(&presence.inner);
        let announce = presence.announce.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_EVERY);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                let this = Self {
                    inner,
                    announce: announce.clone(),
                };
                this.sweep(Instant::now());
            }
        });
        presence
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The current serial.
    pub fn serial(&self) -> u64 {
        self.lock().serial
    }

    /// A sync starts with `set_presence`: `online` and `unavailable` keep the user present
    /// while it runs (and shortly after), bringing them to that state if they were offline;
    /// `offline` leaves their presence alone.
    pub fn sync_started(&self, user: &UserId, set_presence: &PresenceState) -> Syncing {
        let state = match set_presence {
            PresenceState::Online => PresenceState::Online,
            PresenceState::Unavailable => PresenceState::Unavailable,
            _ => return Syncing { presence: None },
        };
        let changed = self.lock().update(user, |entry| {
            entry.syncs += 1;
            if entry.state == PresenceState::Offline {
                if state == PresenceState::Online {
                    entry.last_active = Instant::now();
                    entry.active = true;
                }
                entry.state = state;
            }
        });
        if changed {
            (self.announce)(vec![user.to_owned()]);
        }
        Syncing {
            presence: Some((self.clone(), user.to_owned())),
        }
    }

    /// `PUT /presence/{userId}/status`: the state and the status message that goes with it
    /// (none, or an empty one, clears it). Setting oneself online is activity.
    pub fn set(&self, user: &UserId, state: PresenceState, status_msg: Option<String>) {
        let changed = self.lock().update(user, |entry| {
            if state == PresenceState::Online {
                entry.last_active = Instant::now();
                entry.active = true;
            } else {
                entry.active = false;
            }
            entry.state = state;
            entry.status_msg = status_msg.filter(|m| !m.is_empty());
        });
        if changed {
            (self.announce)(vec![user.to_owned()]);
        }
    }

    /// The user did something (sent an event): they are online and active now.
    pub fn active(&self, user: &UserId) {
        let changed = self.lock().update(user, |entry| {
            entry.last_active = Instant::now();
            entry.active = true;
            entry.state = PresenceState::Online;
        });
        if changed {
            (self.announce)(vec![user.to_owned()]);
        }
    }

    /// Announce what time changed: syncs that lapsed (offline), activity that ended
    /// (`currently_active: false`), idleness (unavailable). States set with `PUT` and no sync
    /// behind them are only subject to the last two.
    fn sweep(&self, now: Instant) {
        let since = |at: Instant| now.saturating_duration_since(at);
        let mut changed = Vec::new();
        {
            let mut inner = self.lock();
            let due: Vec<OwnedUserId> = inner
                .users
                .iter()
                .filter(|(_, e)| {
                    let lapsed = e.syncs == 0
                        && e.last_sync
                            .is_some_and(|at| since(at) >= SYNC_ONLINE_TIMEOUT);
                    let online = e.state == PresenceState::Online;
                    (lapsed && e.state != PresenceState::Offline)
                        || (online && e.active && since(e.last_active) >= ACTIVE_WINDOW)
                        || (online && since(e.last_active) >= IDLE_TIMEOUT)
                })
                .map(|(user, _)| user.clone())
                .collect();
            for user in due {
                let moved = inner.update(&user, |e| {
                    if e.syncs == 0
                        && e.last_sync
                            .is_some_and(|at| since(at) >= SYNC_ONLINE_TIMEOUT)
                    {
                        e.state = PresenceState::Offline;
                        e.last_sync = None;
                    }
                    if since(e.last_active) >= ACTIVE_WINDOW {
                        e.active = false;
                    }
                    if e.state == PresenceState::Online && since(e.last_active) >= IDLE_TIMEOUT {
                        e.state = PresenceState::Unavailable;
                    }
                });
                if moved {
                    changed.push(user);
                }
            }
        }
        if !changed.is_empty() {
            (self.announce)(changed);
        }
    }

    /// The user's presence as `m.presence` content (offline when nothing is known).
    pub fn content(&self, user: &UserId) -> Value {
        let inner = self.lock();
        match inner.users.get(user) {
            Some(entry) => content(entry),
            None => json!({ "presence": "offline" }),
        }
    }

    /// The users whose presence changed in `(since, upto]` (every user with a known presence
    /// when `since` is `None`), with their `m.presence` content, by user id.
    pub fn changed(&self, since: Option<u64>, upto: u64) -> Vec<(OwnedUserId, Value)> {
        let inner = self.lock();
        let mut changed: Vec<(OwnedUserId, Value)> = inner
            .users
            .iter()
            .filter(|(_, e)| e.serial > 0 && e.serial <= upto && since.is_none_or(|s| e.serial > s))
            .map(|(user, e)| (user.clone(), content(e)))
            .collect();
        changed.sort_by(|a, b| a.0.cmp(&b.0));
        changed
    }
}

impl Presence {
    /// The presence of these users, those whose presence is known (to tell new room-mates).
    pub fn current<'a>(
        &self,
        users: impl IntoIterator<Item = &'a UserId>,
    ) -> Vec<(OwnedUserId, Value)> {
        let inner = self.lock();
        users
            .into_iter()
            .filter_map(|user| {
                let entry = inner.users.get(user).filter(|e| e.serial > 0)?;
                Some((user.to_owned(), content(entry)))
            })
            .collect()
    }
}

/// An `m.presence` event.
pub fn event(user: &UserId, content: Value) -> Value {
    json!({ "type": "m.presence", "sender": user, "content": content })
}

fn content(entry: &Entry) -> Value {
    let ago = entry.last_active.elapsed();
    let mut content = json!({
        "presence": entry.state.as_str(),
        "last_active_ago": u64::try_from(ago.as_millis()).unwrap_or(u64::MAX),
    });
    if entry.state == PresenceState::Online {
        content["currently_active"] = entry.active.into();
    }
    if let Some(message) = &entry.status_msg {
        content["status_msg"] = message.clone().into();
    }
    content
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ruma::user_id;

    #[tokio::test]
    async fn syncs_activity_and_time() {
        let announced = Arc::new(Mutex::new(Vec::new()));
        let presence = Presence::new({
            let announced = announced.clone();
            move |users| announced.lock().unwrap().extend(users)
        });
        let alice = user_id!("@alice:x");
        let start = presence.serial();
        assert_eq!(presence.content(alice)["presence"], "offline");

        // A sync brings alice online and active; she sees the change.
        let sync = presence.sync_started(alice, &PresenceState::Online);
        let changed = presence.changed(Some(start), presence.serial());
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0].0, alice);
        assert_eq!(changed[0].1["presence"], "online");
        assert_eq!(changed[0].1["currently_active"], true);
        assert_eq!(
            *announced.lock().unwrap(),
            [alice.to_owned()],
            "her roommates are woken"
        );
        // More syncs change nothing, from any device and with any setting.
        let now = presence.serial();
        let laptop = presence.sync_started(alice, &PresenceState::Unavailable);
        drop(presence.sync_started(alice, &PresenceState::Online));
        assert_eq!(presence.serial(), now, "no flip-flop");
        assert_eq!(
            announced.lock().unwrap().len(),
            1,
            "and not woken for nothing"
        );

        // Activity ends: announced as currently_active false; then idle: unavailable.
        let later = Instant::now();
        presence.sweep(later + ACTIVE_WINDOW);
        assert_eq!(presence.content(alice)["currently_active"], false);
        assert_eq!(
            announced.lock().unwrap().len(),
            2,
            "time's changes are announced too"
        );
        assert!(presence.serial() > now);
        presence.sweep(later + IDLE_TIMEOUT);
        assert_eq!(presence.content(alice)["presence"], "unavailable");
        // Sending brings her back online and active.
        presence.active(alice);
        let content = presence.content(alice);
        assert_eq!(
            (
                content["presence"].as_str(),
                content["currently_active"].as_bool()
            ),
            (Some("online"), Some(true))
        );

        // Syncing keeps her present however long; when the syncs end, she lapses offline.
        presence.sweep(Instant::now() + SYNC_ONLINE_TIMEOUT * 2);
        assert_ne!(presence.content(alice)["presence"], "offline");
        drop(sync);
        drop(laptop);
        presence.sweep(Instant::now());
        assert_ne!(presence.content(alice)["presence"], "offline");
        presence.sweep(Instant::now() + SYNC_ONLINE_TIMEOUT);
        assert_eq!(presence.content(alice)["presence"], "offline");

        // set_presence=offline leaves presence alone; an explicit status sticks with its
        // state, and a new state without a message clears it.
        drop(presence.sync_started(alice, &PresenceState::Offline));
        assert_eq!(presence.content(alice)["presence"], "offline");
        presence.set(alice, PresenceState::Unavailable, Some("lunch".into()));
        let content = presence.content(alice);
        assert_eq!(
            (content["presence"].as_str(), content["status_msg"].as_str()),
            (Some("unavailable"), Some("lunch"))
        );
        let serial = presence.serial();
        presence.set(alice, PresenceState::Unavailable, Some("lunch".into()));
        assert_eq!(
            presence.serial(),
            serial,
            "the same status again is no change"
        );
        presence.set(alice, PresenceState::Online, None);
        assert!(presence.content(alice).get("status_msg").is_none());
        // Changes after the reader's position wait for the next sync.
        assert!(presence.changed(None, start).is_empty());
        // New room-mates learn the presence of those it is known for.
        let bob = user_id!("@bob:x");
        let known = presence.current([alice, bob]);
        assert_eq!(known.len(), 1);
        assert_eq!(known[0].0, alice);
    }
}
