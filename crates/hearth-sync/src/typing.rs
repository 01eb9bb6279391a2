//! Typing notifications: in memory only (they are seconds-lived), with a serial that sync
//! tokens carry and the store's change notifier to wake syncing clients.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hearth_store::{News, Notifier};
use ruma::{OwnedRoomId, OwnedUserId, RoomId, UserId};

/// The longest a client may ask to be shown as typing.
pub const MAX_TYPING: Duration = Duration::from_secs(120);

#[derive(Default)]
struct Inner {
    serial: u64,
    /// room -> user -> until
    rooms: HashMap<OwnedRoomId, BTreeMap<OwnedUserId, Instant>>,
    /// room -> serial of its last change
    changed: HashMap<OwnedRoomId, u64>,
}

/// Who is typing where.
#[derive(Clone)]
pub struct Typing {
    inner: Arc<Mutex<Inner>>,
    notifier: Notifier,
}

impl std::fmt::Debug for Typing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Typing").finish_non_exhaustive()
    }
}

impl Typing {
    pub fn new(notifier: Notifier) -> Self {
        // Serials start at the clock, not at 0, so tokens from before a restart are never
        // ahead of the new process's serial (they would hide typing until it caught up).
        let epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let inner = Inner {
            serial: epoch,
            ..Inner::default()
        };
        Self {
            inner: Arc::new(Mutex::new(inner)),
            notifier,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Start (with a timeout) or stop typing.
    pub fn set(&self, room: &RoomId, user: &UserId, typing: Option<Duration>) {
        {
            let mut inner = self.lock();
            inner.serial += 1;
            let serial = inner.serial;
            let users = inner.rooms.entry(room.to_owned()).or_default();
            match typing {
                Some(timeout) => {
                    users.insert(user.to_owned(), Instant::now() + timeout.min(MAX_TYPING));
                }
                None => {
                    users.remove(user);
                }
            }
            inner.changed.insert(room.to_owned(), serial);
        }
        self.notifier.publish(News::room(room));
        if let Some(timeout) = typing {
            // Wake syncing clients again when this typing notice lapses.
            let this = self.clone();
            let room = room.to_owned();
            tokio::spawn(async move {
                tokio::time::sleep(timeout.min(MAX_TYPING)).await;
                this.expire(&room);
            });
        }
    }

    fn expire(&self, room: &RoomId) {
        let mut inner = self.lock();
        let now = Instant::now();
        let Some(users) = inner.rooms.get_mut(room) else {
            return;
        };
        let before = users.len();
        users.retain(|_, until| *until > now);
        if users.len() != before {
            inner.serial += 1;
            let serial = inner.serial;
            inner.changed.insert(room.to_owned(), serial);
            drop(inner);
            self.notifier.publish(News::room(room));
        }
    }

    /// The current serial.
    pub fn serial(&self) -> u64 {
        self.lock().serial
    }

    /// Users typing in the room now, if the room's typing changed after `since`.
    pub fn changed_since(&self, room: &RoomId, since: u64) -> Option<Vec<OwnedUserId>> {
        let inner = self.lock();
        let changed = *inner.changed.get(room)?;
        if changed <= since {
            return None;
        }
        let now = Instant::now();
        Some(
            inner
                .rooms
                .get(room)
                .map(|users| {
                    users
                        .iter()
                        .filter(|(_, until)| **until > now)
                        .map(|(u, _)| u.clone())
                        .collect()
                })
                .unwrap_or_default(),
        )
    }
}
