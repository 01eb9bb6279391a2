//! The notifier: whom to wake when something a client syncs on has been committed.
//!
//! Writers publish [`News`] after they commit: the rooms it happened in, the users and the
//! devices it concerns. A waiting sync holds a [`Waiter`] registered under its user, its device
//! and the rooms it is in, and news wakes only the waiters registered under one of its
//! [`Topic`]s: a message in one room wakes that room's members, a to-device message the device
//! it is for. A thousand idle clients cost nothing while others chat.
//!
//! The race a notifier has: a sync reads, finds nothing, then waits — news committed between the
//! read and the wait must still wake it. So a waiter registers *before* it reads, and a wake is
//! a stored permit (`Notify::notify_one`): news published while its sync is reading makes the
//! next wait return at once, and the sync reads again.
//!
//! Memory: one entry per (waiter, topic) while a sync waits; a waiter unregisters when dropped.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ruma::{DeviceId, OwnedDeviceId, OwnedRoomId, OwnedUserId, RoomId, UserId};
use tokio::sync::Notify;

/// What news can concern.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Something happened in the room: an event, a receipt, typing, or news about a member
    /// (presence, device keys) that everyone sharing the room sees.
    Room(OwnedRoomId),
    /// Something of the user's own changed: account data, their membership anywhere (an invite
    /// to a room they are not in yet), their devices.
    User(OwnedUserId),
    /// Something for one device: to-device messages, its one-time key counts.
    Device(OwnedUserId, OwnedDeviceId),
}

/// One committed change, by the topics it concerns.
#[derive(Clone, Debug, Default)]
pub struct News {
    pub rooms: Vec<OwnedRoomId>,
    pub users: Vec<OwnedUserId>,
    pub devices: Vec<(OwnedUserId, OwnedDeviceId)>,
}

impl News {
    pub fn room(room: &RoomId) -> Self {
        Self {
            rooms: vec![room.to_owned()],
            ..Self::default()
        }
    }

    pub fn user(user: &UserId) -> Self {
        Self {
            users: vec![user.to_owned()],
            ..Self::default()
        }
    }

    fn topics(self) -> impl Iterator<Item = Topic> {
        let rooms = self.rooms.into_iter().map(Topic::Room);
        let users = self.users.into_iter().map(Topic::User);
        let devices = self
            .devices
            .into_iter()
            .map(|(user, device)| Topic::Device(user, device));
        rooms.chain(users).chain(devices)
    }
}

/// The registry of waiting syncs, shared by every clone.
#[derive(Clone, Debug, Default)]
pub struct Notifier {
    inner: Arc<Registry>,
}

#[derive(Debug, Default)]
struct Registry {
    next_id: AtomicU64,
    /// Wakes delivered so far (for tests and metrics: how many syncs news woke).
    wakes: AtomicU64,
    topics: Mutex<HashMap<Topic, HashMap<u64, Arc<Notify>>>>,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Topic, HashMap<u64, Arc<Notify>>>> {
        self.topics.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Notifier {
    /// A waiter registered under nothing yet: add its topics with [`Waiter::watch`] before
    /// reading what it waits for.
    pub fn waiter(&self) -> Waiter {
        Waiter {
            registry: self.inner.clone(),
            id: self.inner.next_id.fetch_add(1, Ordering::Relaxed),
            wake: Arc::new(Notify::new()),
            topics: HashSet::new(),
        }
    }

    /// Wake the waiters registered under any of the news' topics (each once).
    pub fn publish(&self, news: News) {
        let topics = self.inner.lock();
        let mut woken = HashSet::new();
        for topic in news.topics() {
            if let Some(waiters) = topics.get(&topic) {
                for (id, wake) in waiters {
                    if woken.insert(*id) {
                        wake.notify_one();
                    }
                }
            }
        }
        self.inner
            .wakes
            .fetch_add(woken.len() as u64, Ordering::Relaxed);
    }

    /// Wake every waiter: after a failure that leaves unknown what was committed.
    pub fn wake_all(&self) {
        let topics = self.inner.lock();
        let mut woken = HashSet::new();
        for (id, wake) in topics.values().flatten() {
            if woken.insert(*id) {
                wake.notify_one();
            }
        }
        self.inner
            .wakes
            .fetch_add(woken.len() as u64, Ordering::Relaxed);
    }

    /// How many wakes news has delivered since the start.
    pub fn wakes(&self) -> u64 {
        self.inner.wakes.load(Ordering::Relaxed)
    }

    /// How many waiters are registered under the topic now.
    pub fn waiting_on(&self, topic: &Topic) -> usize {
        self.inner.lock().get(topic).map_or(0, HashMap::len)
    }
}

/// One waiting sync's registration; dropping it unregisters.
#[derive(Debug)]
pub struct Waiter {
    registry: Arc<Registry>,
    id: u64,
    wake: Arc<Notify>,
    topics: HashSet<Topic>,
}

impl Waiter {
    /// Be woken by news about `topic` from now on (registering twice is once).
    pub fn watch(&mut self, topic: Topic) {
        if self.topics.contains(&topic) {
            return;
        }
        self.registry
            .lock()
            .entry(topic.clone())
            .or_default()
            .insert(self.id, self.wake.clone());
        self.topics.insert(topic);
    }

    /// Watch a user and one of their devices.
    pub fn watch_device(&mut self, user: &UserId, device: &DeviceId) {
        self.watch(Topic::User(user.to_owned()));
        self.watch(Topic::Device(user.to_owned(), device.to_owned()));
    }

    /// Watch rooms, taking one lock for all of them.
    pub fn watch_rooms<'a>(&mut self, rooms: impl IntoIterator<Item = &'a RoomId>) {
        let mut registry = None;
        for room in rooms {
            let topic = Topic::Room(room.to_owned());
            if self.topics.contains(&topic) {
                continue;
            }
            registry
                .get_or_insert_with(|| self.registry.lock())
                .entry(topic.clone())
                .or_default()
                .insert(self.id, self.wake.clone());
            self.topics.insert(topic);
        }
    }

    /// Wait for news published since the waiter registered or last woke.
    pub async fn woken(&self) {
        self.wake.notified().await;
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let mut registry = self.registry.lock();
        for topic in self.topics.drain() {
            if let Some(waiters) = registry.get_mut(&topic) {
                waiters.remove(&self.id);
                if waiters.is_empty() {
                    registry.remove(&topic);
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use ruma::{device_id, room_id, user_id};

    use super::*;

    async fn woke(waiter: &Waiter) -> bool {
        tokio::time::timeout(Duration::from_millis(20), waiter.woken())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn news_wakes_only_who_it_concerns() {
        let notifier = Notifier::default();
        let (alice, bob) = (user_id!("@alice:x"), user_id!("@bob:x"));
        let (lobby, attic) = (room_id!("!lobby:x"), room_id!("!attic:x"));
        let mut a = notifier.waiter();
        a.watch_device(alice, device_id!("PHONE"));
        a.watch_rooms([lobby, attic]);
        let mut b = notifier.waiter();
        b.watch_device(bob, device_id!("LAPTOP"));
        b.watch_rooms([lobby]);

        notifier.publish(News::room(attic));
        assert!(woke(&a).await);
        assert!(!woke(&b).await, "bob is not in the attic");

        notifier.publish(News::room(lobby));
        assert!(woke(&a).await && woke(&b).await);

        notifier.publish(News::user(bob));
        assert!(!woke(&a).await);
        assert!(woke(&b).await);

        notifier.publish(News {
            devices: vec![(alice.to_owned(), device_id!("TABLET").to_owned())],
            ..News::default()
        });
        assert!(!woke(&a).await, "news for another of alice's devices");
        assert_eq!(notifier.wakes(), 4);
    }

    #[tokio::test]
    async fn news_before_the_wait_is_not_lost() {
        let notifier = Notifier::default();
        let room = room_id!("!r:x");
        let mut waiter = notifier.waiter();
        waiter.watch_rooms([room]);
        // Published while the sync was still reading: the next wait returns at once, once.
        notifier.publish(News::room(room));
        notifier.publish(News::room(room));
        assert!(woke(&waiter).await);
        assert!(!woke(&waiter).await);
    }

    #[tokio::test]
    async fn dropped_waiters_unregister() {
        let notifier = Notifier::default();
        let room = room_id!("!r:x");
        let topic = Topic::Room(room.to_owned());
        let mut first = notifier.waiter();
        first.watch_rooms([room, room]);
        let mut second = notifier.waiter();
        second.watch(topic.clone());
        assert_eq!(notifier.waiting_on(&topic), 2);
        drop(first);
        assert_eq!(notifier.waiting_on(&topic), 1);
        drop(second);
        assert_eq!(notifier.waiting_on(&topic), 0);
        assert!(
            notifier.inner.lock().is_empty(),
            "no empty topics left behind"
        );
        notifier.wake_all();
        assert_eq!(notifier.wakes(), 0);
    }
}
