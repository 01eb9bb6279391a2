//! Sliding sync connections: what each client connection was last sent, so that a request
//! after `pos` carries only what changed since.
//!
//! A connection is keyed by user, device and `conn_id`. It keeps the state it answered with for
//! its last two positions: the client's next request names one of them (the newest, or the
//! one before when the newest response was lost), and anything older is unknown
//! (`M_UNKNOWN_POS`, after which the client starts over). Positions are unique across the
//! server, so a `pos` of another connection (or another user's) is unknown here too.
//!
//! Memory is bounded: at most [`MAX_PER_DEVICE`] connections per device and [`MAX_CONNECTIONS`]
//! in all (the least recently used go first), and each remembers at most
//! [`MAX_ROOMS_PER_CONNECTION`] rooms. Connections unused for [`IDLE_EXPIRY`] are forgotten.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ruma::{OwnedDeviceId, OwnedRoomId, OwnedUserId};

use crate::SyncToken;

/// Most connections one device may hold (Element X opens two).
pub(crate) const MAX_PER_DEVICE: usize = 8;
/// Most connections the server remembers.
pub(crate) const MAX_CONNECTIONS: usize = 20_000;
/// Most rooms a connection remembers having sent; past it, the oldest are forgotten (and sent
/// whole again if they come back).
pub(crate) const MAX_ROOMS_PER_CONNECTION: usize = 5_000;
/// A connection unused this long is forgotten.
pub(crate) const IDLE_EXPIRY: Duration = Duration::from_secs(30 * 60);

/// What the client was sent of one room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RoomSent {
    /// The event position its timeline and state were sent up to.
    pub(crate) events: i64,
    /// The fingerprint of its `required_state` then: a room whose required state changes is
    /// sent whole again.
    pub(crate) config: u64,
    /// Its timeline limit then: a room whose limit grows is sent whole again.
    pub(crate) timeline_limit: usize,
    /// When it was last sent, in this connection's response count (to forget the oldest).
    pub(crate) sent_at: u64,
}

/// What a connection had sent as of one position.
#[derive(Debug, Clone, Default)]
pub(crate) struct ConnectionState {
    /// The positions of every stream the response reached.
    pub(crate) token: SyncToken,
    pub(crate) rooms: HashMap<OwnedRoomId, RoomSent>,
    /// Each list's count as last sent.
    pub(crate) counts: HashMap<String, u64>,
    /// How many responses this connection has given.
    pub(crate) responses: u64,
}

impl ConnectionState {
    /// Forget the rooms sent longest ago, past the bound.
    pub(crate) fn trim(&mut self) {
        if self.rooms.len() <= MAX_ROOMS_PER_CONNECTION {
            return;
        }
        let mut ages: Vec<u64> = self.rooms.values().map(|r| r.sent_at).collect();
        ages.sort_unstable();
        let cut = ages[self.rooms.len() - MAX_ROOMS_PER_CONNECTION];
        self.rooms.retain(|_, r| r.sent_at >= cut);
    }
}

type Key = (OwnedUserId, OwnedDeviceId, String);

#[derive(Debug)]
struct Connection {
    /// `(pos, state)`, oldest first; at most two.
    states: VecDeque<(u64, Arc<ConnectionState>)>,
    last_used: Instant,
}

/// Every connection's state. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub(crate) struct Connections {
    inner: Arc<Mutex<HashMap<Key, Connection>>>,
    next_pos: Arc<AtomicU64>,
}

/// Why a `pos` is not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UnknownPos;

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Connection>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The state a request continues from: empty for a request without `pos` (which starts the
    /// connection over), the state of `pos` otherwise.
    pub(crate) fn resume(
        &self,
        key: &Key,
        pos: Option<&str>,
    ) -> Result<Arc<ConnectionState>, UnknownPos> {
        let mut map = self.lock();
        let Some(pos) = pos else {
            map.remove(key);
            return Ok(Arc::default());
        };
        let pos: u64 = pos.parse().map_err(|_| UnknownPos)?;
        let connection = map.get_mut(key).ok_or(UnknownPos)?;
        if connection.last_used.elapsed() > IDLE_EXPIRY {
            map.remove(key);
            return Err(UnknownPos);
        }
        connection.last_used = Instant::now();
        connection
            .states
            .iter()
            .find(|(p, _)| *p == pos)
            .map(|(_, state)| state.clone())
            .ok_or(UnknownPos)
    }

    /// Record what a response sent, under a new position; returns it. The state `from` was
    /// resumed from stays valid (the response may be lost), older ones go.
    pub(crate) fn save(&self, key: Key, from: Option<&str>, state: ConnectionState) -> String {
        let pos = self.next_pos.fetch_add(1, Ordering::Relaxed) + 1;
        let mut map = self.lock();
        let now = Instant::now();
        if !map.contains_key(&key) {
            self.make_room(&mut map, &key, now);
        }
        let connection = map.entry(key).or_insert_with(|| Connection {
            states: VecDeque::new(),
            last_used: now,
        });
        connection.last_used = now;
        let from: Option<u64> = from.and_then(|p| p.parse().ok());
        connection.states.retain(|(p, _)| Some(*p) == from);
        connection.states.push_back((pos, Arc::new(state)));
        pos.to_string()
    }

    /// Before adding a connection: drop expired ones, then the device's and the server's least
    /// recently used past their bounds.
    fn make_room(&self, map: &mut HashMap<Key, Connection>, key: &Key, now: Instant) {
        map.retain(|_, c| now.duration_since(c.last_used) <= IDLE_EXPIRY);
        let mut of_device: Vec<(Instant, Key)> = map
            .iter()
            .filter(|((u, d, _), _)| *u == key.0 && *d == key.1)
            .map(|(k, c)| (c.last_used, k.clone()))
            .collect();
        if of_device.len() >= MAX_PER_DEVICE {
            of_device.sort();
            for (_, old) in of_device.iter().take(of_device.len() + 1 - MAX_PER_DEVICE) {
                map.remove(old);
            }
        }
        if map.len() >= MAX_CONNECTIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, c)| c.last_used)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
    }

    /// How many connections are remembered (for tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(conn: &str) -> Key {
        (
            ruma::owned_user_id!("@a:h.test"),
            ruma::owned_device_id!("D"),
            conn.to_owned(),
        )
    }

    #[test]
    fn a_lost_response_can_be_retried_but_older_positions_are_unknown() {
        let connections = Connections::default();
        let k = key("room-list");
        assert!(connections.resume(&k, Some("1")).is_err());
        let first = connections.save(k.clone(), None, ConnectionState::default());
        let second = connections.save(k.clone(), Some(&first), ConnectionState::default());
        // The client did not get `second`: it retries from `first`.
        assert!(connections.resume(&k, Some(&first)).is_ok());
        let third = connections.save(k.clone(), Some(&first), ConnectionState::default());
        assert!(connections.resume(&k, Some(&second)).is_err());
        assert!(connections.resume(&k, Some(&third)).is_ok());
        // Another connection of the same device does not know these positions.
        assert!(matches!(
            connections.resume(&key("other"), Some(&third)),
            Err(UnknownPos)
        ));
        // A request without pos starts over.
        assert!(connections.resume(&k, None).is_ok());
        assert!(connections.resume(&k, Some(&third)).is_err());
    }

    #[test]
    fn connections_per_device_are_bounded() {
        let connections = Connections::default();
        for i in 0..100 {
            connections.save(key(&format!("c{i}")), None, ConnectionState::default());
        }
        assert_eq!(connections.len(), MAX_PER_DEVICE);
    }
}
