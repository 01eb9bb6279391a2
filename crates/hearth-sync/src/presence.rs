//! Presence: whether a user is online, unavailable (idle) or offline, and their status message.
//!
//! Kept in memory, like typing: a user is online while one of their clients is syncing (with
//! `set_presence` left at `online`) and for [`SYNC_ONLINE_TIMEOUT`] after the last such sync
//! ends; then unavailable while a client syncs with `set_presence=unavailable`, else offline.
//! A sync start only ever raises the state (offline < unavailable < online), so two devices
//! syncing with different settings cannot flip it back and forth. `PUT
//! /presence/{userId}/status` sets the state and status message directly.
//! After a restart everybody starts offline until their clients sync again, and status
//! messages set before it are gone (NOTSPEC: the spec does not say how long presence lives).
//! Every change takes a new serial, which sync tokens carry, and wakes syncing clients through
//! the store's change notifier.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hearth_store::Changes;
use ruma::presence::PresenceState;
use ruma::{OwnedUserId, UserId};
use serde_json::{Value, json};

/// How long a user stays online after their last sync ended.
pub const SYNC_ONLINE_TIMEOUT: Duration = Duration::from_secs(30);

/// How recently a user must have done something (sent, set their presence) to count as
/// `currently_active`.
pub const ACTIVE_WINDOW: Duration = Duration::from_secs(60);

/// How often lapsed syncs are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// Users kept at most; offline users without a status message go first.
const MAX_USERS: usize = 100_000;

#[derive(Debug)]
struct Entry {
    state: PresenceState,
    status_msg: Option<String>,
    last_active: Instant,
    /// Syncs of the user running now with `set_presence=online`, and when the last one ended.
    online_syncs: u32,
    last_online_sync: Option<Instant>,
    /// The same for `set_presence=unavailable`.
    unavailable_syncs: u32,
    last_unavailable_sync: Option<Instant>,
    /// The serial of the entry's last visible change.
    serial: u64,
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
            online_syncs: 0,
            last_online_sync: None,
            unavailable_syncs: 0,
            last_unavailable_sync: None,
            serial: 0,
        })
    }

    /// Give the user's entry a new serial.
    fn changed(&mut self, user: &UserId) {
        self.serial += 1;
        let serial = self.serial;
        self.entry(user).serial = serial;
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
    changes: Changes,
}

impl std::fmt::Debug for Presence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presence").finish_non_exhaustive()
    }
}

/// The rank of a state: a sync start never lowers it.
fn rank(state: &PresenceState) -> u8 {
    match state {
        PresenceState::Online => 2,
        PresenceState::Unavailable => 1,
        _ => 0,
    }
}

/// A running sync that keeps its user online (or unavailable); dropping it ends that.
#[derive(Debug)]
pub struct Syncing {
    presence: Option<(Presence, OwnedUserId, bool)>,
}

impl Drop for Syncing {
    fn drop(&mut self) {
        if let Some((presence, user, online)) = self.presence.take() {
            let mut inner = presence.lock();
            let entry = inner.entry(&user);
            let now = Some(Instant::now());
            if online {
                entry.online_syncs = entry.online_syncs.saturating_sub(1);
                entry.last_online_sync = now;
            } else {
                entry.unavailable_syncs = entry.unavailable_syncs.saturating_sub(1);
                entry.last_unavailable_sync = now;
            }
        }
    }
}

impl Presence {
    /// Also starts the task that takes users offline when their syncs lapse (so call it inside
    /// the runtime).
    pub fn new(changes: Changes) -> Self {
        // Serials start at the clock, as typing's do: tokens from before a restart stay behind.
        let epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let presence = Self {
            inner: Arc::new(Mutex::new(Inner {
                serial: epoch,
                users: HashMap::new(),
            })),
            changes,
        };
        let weak = Arc::downgrade(&presence.inner);
        let changes = presence.changes.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_EVERY);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                let this = Self {
                    inner,
                    changes: changes.clone(),
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

    /// A sync starts with `set_presence`: `online` and `unavailable` mark the user so (while it
    /// runs and shortly after), `offline` leaves their presence alone.
    pub fn sync_started(&self, user: &UserId, set_presence: &PresenceState) -> Syncing {
        let (state, online) = match set_presence {
            PresenceState::Online => (PresenceState::Online, true),
            PresenceState::Unavailable => (PresenceState::Unavailable, false),
            _ => return Syncing { presence: None },
        };
        let changed = {
            let mut inner = self.lock();
            let entry = inner.entry(user);
            if online {
                entry.online_syncs += 1;
            } else {
                entry.unavailable_syncs += 1;
            }
            let changed = rank(&state) > rank(&entry.state);
            if changed {
                entry.state = state;
                if entry.state == PresenceState::Online {
                    entry.last_active = Instant::now();
                }
                inner.changed(user);
            }
            changed
        };
        if changed {
            self.changes.notify();
        }
        Syncing {
            presence: Some((self.clone(), user.to_owned(), online)),
        }
    }

    /// `PUT /presence/{userId}/status`: the state, and the status message when one is given
    /// (an empty one clears it).
    pub fn set(&self, user: &UserId, state: PresenceState, status_msg: Option<String>) {
        {
            let mut inner = self.lock();
            let entry = inner.entry(user);
            entry.state = state;
            if let Some(message) = status_msg {
                entry.status_msg = (!message.is_empty()).then_some(message);
            }
            entry.last_active = Instant::now();
            inner.changed(user);
        }
        self.changes.notify();
    }

    /// The user did something (sent an event): they are active now.
    pub fn active(&self, user: &UserId) {
        let mut inner = self.lock();
        if let Some(entry) = inner.users.get_mut(user) {
            entry.last_active = Instant::now();
        }
    }

    /// Lower the users whose syncs lapsed: online to unavailable (if a client still syncs so)
    /// or offline, unavailable to offline. States set with `PUT` and no sync behind them stay.
    fn sweep(&self, now: Instant) {
        let lapsed = |running: u32, last: Option<Instant>| {
            running == 0 && last.is_some_and(|at| now.duration_since(at) >= SYNC_ONLINE_TIMEOUT)
        };
        let recent = |running: u32, last: Option<Instant>| {
            running > 0 || last.is_some_and(|at| now.duration_since(at) < SYNC_ONLINE_TIMEOUT)
        };
        let mut changed = false;
        {
            let mut inner = self.lock();
            let lowered: Vec<(OwnedUserId, PresenceState)> = inner
                .users
                .iter()
                .filter_map(|(user, e)| {
                    let unavailable = recent(e.unavailable_syncs, e.last_unavailable_sync);
                    let to = match e.state {
                        PresenceState::Online
                            if lapsed(e.online_syncs, e.last_online_sync) && unavailable =>
                        {
                            PresenceState::Unavailable
                        }
                        PresenceState::Online if lapsed(e.online_syncs, e.last_online_sync) => {
                            PresenceState::Offline
                        }
                        PresenceState::Unavailable
                            if e.online_syncs == 0
                                && lapsed(e.unavailable_syncs, e.last_unavailable_sync) =>
                        {
                            PresenceState::Offline
                        }
                        _ => return None,
                    };
                    Some((user.clone(), to))
                })
                .collect();
            for (user, state) in lowered {
                let entry = inner.entry(&user);
                entry.state = state;
                entry.last_online_sync = None;
                if entry.state == PresenceState::Offline {
                    entry.last_unavailable_sync = None;
                }
                inner.changed(&user);
                changed = true;
            }
        }
        if changed {
            self.changes.notify();
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
        content["currently_active"] = (ago < ACTIVE_WINDOW).into();
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
    async fn syncing_keeps_a_user_online_until_it_lapses() {
        let presence = Presence::new(Changes::default());
        let alice = user_id!("@alice:x");
        let start = presence.serial();
        assert_eq!(presence.content(alice)["presence"], "offline");

        let sync = presence.sync_started(alice, &PresenceState::Online);
        assert_eq!(presence.content(alice)["presence"], "online");
        let changed = presence.changed(Some(start), presence.serial());
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0].0, alice);
        assert_eq!(changed[0].1["currently_active"], true);
        // A second sync changes nothing: no new event.
        let again = presence.sync_started(alice, &PresenceState::Online);
        let now = presence.serial();
        drop(again);
        assert!(presence.changed(Some(now), now).is_empty());

        // Still syncing: no lapse however long it takes.
        presence.sweep(Instant::now() + SYNC_ONLINE_TIMEOUT * 10);
        assert_eq!(presence.content(alice)["presence"], "online");
        drop(sync);
        presence.sweep(Instant::now());
        assert_eq!(presence.content(alice)["presence"], "online");
        presence.sweep(Instant::now() + SYNC_ONLINE_TIMEOUT);
        assert_eq!(presence.content(alice)["presence"], "offline");
        assert!(presence.serial() > now, "going offline is a change");

        // Two devices, one online and one unavailable: starting the unavailable one's syncs
        // never lowers the state; when the online one stops, the other keeps it unavailable.
        let phone = presence.sync_started(alice, &PresenceState::Online);
        let serial = presence.serial();
        for _ in 0..3 {
            drop(presence.sync_started(alice, &PresenceState::Unavailable));
        }
        let laptop = presence.sync_started(alice, &PresenceState::Unavailable);
        assert_eq!(presence.serial(), serial, "no flip-flop");
        drop(phone);
        presence.sweep(Instant::now() + SYNC_ONLINE_TIMEOUT);
        assert_eq!(presence.content(alice)["presence"], "unavailable");
        drop(laptop);
        presence.sweep(Instant::now() + SYNC_ONLINE_TIMEOUT);
        assert_eq!(presence.content(alice)["presence"], "offline");

        // set_presence=offline leaves presence alone; an explicit status sticks.
        drop(presence.sync_started(alice, &PresenceState::Offline));
        assert_eq!(presence.content(alice)["presence"], "offline");
        presence.set(alice, PresenceState::Unavailable, Some("lunch".into()));
        let content = presence.content(alice);
        assert_eq!(
            (content["presence"].as_str(), content["status_msg"].as_str()),
            (Some("unavailable"), Some("lunch"))
        );
        presence.set(alice, PresenceState::Online, None);
        assert_eq!(presence.content(alice)["status_msg"], "lunch");
        presence.set(alice, PresenceState::Online, Some(String::new()));
        assert!(presence.content(alice).get("status_msg").is_none());
        // Changes after the reader's position wait for the next sync.
        assert!(presence.changed(None, start).is_empty());
    }
}
