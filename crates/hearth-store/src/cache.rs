//! A read-through cache whose entries writers invalidate after they commit.
//!
//! The one race such a cache has: a reader queries the database, a writer commits and
//! invalidates, then the reader stores what it read before the commit, and the stale entry
//! lives on. So every invalidation bumps a generation, a reader notes the generation before
//! its query, and its result is only kept if no invalidation happened in between.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex};

use ruma::{OwnedDeviceId, OwnedRoomId, OwnedUserId};

use crate::recent::Recent;
use crate::{Membership, ReadReceipts, TokenOwner};

/// What the store keeps in memory between queries; the writers that change the rows behind an
/// entry invalidate it after they commit.
#[derive(Debug)]
pub(crate) struct Caches {
    /// The newest events of the rooms being written to (see [`Recent`]).
    pub(crate) recent: Recent,
    /// A user's memberships (what every `/sync` starts from).
    pub(crate) memberships: Cache<OwnedUserId, Arc<Vec<Membership>>>,
    /// Access tokens by hash (every authenticated request): cleared by every account write.
    pub(crate) tokens: Cache<String, TokenOwner>,
    /// The events a user's read receipts in a room point at (unread counts).
    pub(crate) read_receipts: Cache<(OwnedRoomId, OwnedUserId), ReadReceipts>,
    /// Account-data entries by (user, room or "", type): push rules are read on every sync
    /// that counts unread events.
    pub(crate) account_data: Cache<(OwnedUserId, String, String), Option<Arc<str>>>,
    /// Per user, a position no account data of theirs is newer than (see [`Bounds`]).
    pub(crate) account_data_bounds: Bounds<OwnedUserId>,
    /// Per room, a position no receipt in it is newer than.
    pub(crate) receipt_bounds: Bounds<OwnedRoomId>,
    /// The erased users (see `erased.rs`: not a cache that forgets, the whole set).
    pub(crate) erased: crate::erased::ErasedSet,
    /// Each device's one-time and fallback key counts (dropped on upload and claim).
    pub(crate) key_counts: Cache<(OwnedUserId, OwnedDeviceId), Arc<crate::KeyCounts>>,
    /// Per device, a position no to-device message for it is newer than.
    pub(crate) to_device_bounds: Bounds<(OwnedUserId, OwnedDeviceId)>,
    /// Per device, the newest to-device message delivered and not yet deleted.
    pub(crate) to_device_delivered: Delivered,
    /// The event position of the newest committed membership change (raised by the writer
    /// before it publishes the position; at start and after a failed commit, the last
    /// position, which only costs a query).
    pub(crate) memberships_moved: AtomicI64,
    /// Each room's latest bump event (sliding sync's recency order).
    pub(crate) bump: crate::bump::BumpStamps,
}

impl Default for Caches {
    fn default() -> Self {
        Self {
            recent: Recent::default(),
            memberships: Cache::new(10_000),
            tokens: Cache::new(10_000),
            read_receipts: Cache::new(100_000),
            account_data: Cache::new(4_096),
            account_data_bounds: Bounds::new(100_000),
            receipt_bounds: Bounds::new(100_000),
            erased: Default::default(),
            key_counts: Cache::new(10_000),
            to_device_bounds: Bounds::new(100_000),
            to_device_delivered: Delivered::default(),
            memberships_moved: AtomicI64::new(i64::MAX),
            bump: Default::default(),
        }
    }
}

/// Entries are cleared all at once when there would be more than `capacity`: a miss only
/// costs the query it saves.
#[derive(Debug)]
pub(crate) struct Cache<K, V> {
    inner: Mutex<Inner<K, V>>,
    capacity: usize,
}

#[derive(Debug)]
struct Inner<K, V> {
    generation: u64,
    map: HashMap<K, V>,
}

/// A miss: pass it back to [`Cache::fill`] with what the database said.
#[must_use]
pub(crate) struct Ticket(u64);

impl<K: Eq + Hash, V: Clone> Cache<K, V> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                generation: 0,
                map: HashMap::new(),
            }),
            capacity,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<K, V>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached value, or a ticket to fill it with after reading the database.
    pub(crate) fn get<Q>(&self, key: &Q) -> Result<V, Ticket>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let inner = self.lock();
        inner.map.get(key).cloned().ok_or(Ticket(inner.generation))
    }

    /// Keep a value read after `ticket` was issued, unless something was invalidated since.
    pub(crate) fn fill(&self, ticket: Ticket, key: K, value: V) {
        let mut inner = self.lock();
        if inner.generation != ticket.0 {
            return;
        }
        if inner.map.len() >= self.capacity && !inner.map.contains_key(&key) {
            inner.map.clear();
        }
        inner.map.insert(key, value);
    }

    /// Forget one key: call after committing a write that changes it.
    pub(crate) fn invalidate<Q>(&self, key: &Q)
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.map.remove(key);
    }

    /// Forget everything: call after committing a write that may change any entry.
    pub(crate) fn clear(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.map.clear();
    }
}

/// Per key, an upper bound of the newest stream position written for it: "nothing of this
/// key is newer than N", which spares the query for what changed since N.
///
/// Writers raise the bound inside their transaction, before it commits: writers of one stream
/// are serialised until they commit but publish their positions afterwards, in any order, so a
/// bound raised after the commit could still be low when a later writer's position is already
/// visible. Readers raise it to what they found. Bounds only go up, so the order in which the
/// two arrive does not matter; and an entry dropped when the map is full comes back no lower
/// than anything raised before.
#[derive(Debug)]
pub(crate) struct Bounds<K> {
    inner: Mutex<BoundsInner<K>>,
    capacity: usize,
}

#[derive(Debug)]
struct BoundsInner<K> {
    map: HashMap<K, i64>,
    /// The highest position raised before the map was last cleared: the least a new entry
    /// starts at, since its key's old entry may have been that high.
    cleared_at: i64,
    /// The highest position ever raised.
    highest: i64,
}

impl<K: Eq + Hash> Bounds<K> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(BoundsInner {
                map: HashMap::new(),
                cleared_at: 0,
                highest: 0,
            }),
            capacity,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BoundsInner<K>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether nothing of `key` is known to be newer than `since`.
    pub(crate) fn nothing_after<Q>(&self, key: &Q, since: i64) -> bool
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.lock()
            .map
            .get(key)
            .is_some_and(|bound| *bound <= since)
    }

    /// Nothing of `key` is newer than `position` (as far as this caller knows).
    pub(crate) fn raise(&self, key: K, position: i64) {
        let mut inner = self.lock();
        if inner.map.len() >= self.capacity && !inner.map.contains_key(&key) {
            inner.map.clear();
            inner.cleared_at = inner.highest;
        }
        inner.highest = inner.highest.max(position);
        let floor = inner.cleared_at;
        let bound = inner.map.entry(key).or_insert(floor);
        *bound = (*bound).max(position);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_read_older_than_an_invalidation_is_not_kept() {
        let cache: Cache<&str, i32> = Cache::new(10);
        let Err(ticket) = cache.get("a") else {
            panic!("empty cache hit")
        };
        // A writer commits and invalidates while the reader's query is in flight.
        cache.invalidate("a");
        cache.fill(ticket, "a", 1);
        assert!(cache.get("a").is_err(), "the stale read was kept");

        let Err(ticket) = cache.get("a") else {
            panic!("unexpected hit")
        };
        cache.fill(ticket, "a", 2);
        assert_eq!(cache.get("a").ok(), Some(2));
        cache.clear();
        assert!(cache.get("a").is_err());
    }

    #[test]
    fn bounds_only_rise() {
        let bounds: Bounds<&str> = Bounds::new(10);
        assert!(
            !bounds.nothing_after("room", 5),
            "an unknown key needs a query"
        );
        bounds.raise("room", 7);
        assert!(!bounds.nothing_after("room", 6));
        assert!(bounds.nothing_after("room", 7));
        // A reader that looked at an older window does not lower what a writer raised.
        bounds.raise("room", 3);
        assert!(!bounds.nothing_after("room", 6));
    }

    #[test]
    fn a_cleared_bound_comes_back_no_lower() {
        let bounds: Bounds<u32> = Bounds::new(2);
        bounds.raise(1, 50);
        bounds.raise(2, 10);
        // Full: the map starts over, and a reader that looked before key 1's write at 50 now
        // raises it to what it saw then.
        bounds.raise(3, 5);
        bounds.raise(1, 20);
        assert!(
            !bounds.nothing_after(&1, 20),
            "the write at 50 would be skipped"
        );
        assert!(bounds.nothing_after(&1, 50));
    }

    #[test]
    fn capacity_bounds_the_entries() {
        let cache: Cache<u32, u32> = Cache::new(3);
        for i in 0..10 {
            let Err(ticket) = cache.get(&i) else {
                panic!("unexpected hit")
            };
            cache.fill(ticket, i, i);
            assert!(cache.lock().map.len() <= 3);
        }
        assert_eq!(cache.get(&9).ok(), Some(9));
    }
}

/// Which devices were delivered to-device messages that are still stored: so that the sync
/// which acknowledges them deletes them, and every other sync costs no write. Bounded: when
/// full it starts over, and what it forgot is deleted with the device's next acknowledgement.
#[derive(Debug, Default)]
pub(crate) struct Delivered(Mutex<HashMap<(OwnedUserId, OwnedDeviceId), i64>>);

impl Delivered {
    const CAPACITY: usize = 100_000;

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(OwnedUserId, OwnedDeviceId), i64>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Messages up to `position` were delivered to the device.
    pub(crate) fn note(&self, device: (OwnedUserId, OwnedDeviceId), position: i64) {
        let mut map = self.lock();
        if map.len() >= Self::CAPACITY && !map.contains_key(&device) {
            map.clear();
        }
        let entry = map.entry(device).or_insert(position);
        *entry = (*entry).max(position);
    }

    /// Whether the device has delivered messages at or before `upto`; forgets them if it has
    /// none after (the caller deletes them).
    pub(crate) fn take_through(&self, device: &(OwnedUserId, OwnedDeviceId), upto: i64) -> bool {
        let mut map = self.lock();
        match map.get(device) {
            Some(&newest) if newest <= upto => {
                map.remove(device);
                true
            }
            // Some delivered ones are older than `upto`, some newer: delete the older, keep
            // the note for the rest.
            Some(_) => true,
            None => false,
        }
    }
}
