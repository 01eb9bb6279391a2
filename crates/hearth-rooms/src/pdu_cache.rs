//! Parsed events, shared: every sync pass that renders a new message would otherwise parse its
//! JSON and re-hash it to check its id, once per receiver. Events never change once stored
//! (redactions are applied when rendering), so a parsed [`Pdu`] is kept by event id and shared.
//!
//! Only events read back from the store are looked up here, so an entry for an event whose
//! commit failed is never served: nothing asks for an id the store does not have.
//!
//! Bounded: two generations of at most `capacity / 2` entries each; when the young one fills,
//! the old one is dropped and the young one becomes old (a hit in the old generation moves the
//! entry back to the young one). Recently used events stay; memory stays at `capacity` events.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ruma::{EventId, OwnedEventId};

use crate::pdu::Pdu;

#[derive(Debug)]
pub(crate) struct PduCache {
    inner: Mutex<Generations>,
    per_generation: usize,
}

#[derive(Debug, Default)]
struct Generations {
    young: HashMap<OwnedEventId, Arc<Pdu>>,
    old: HashMap<OwnedEventId, Arc<Pdu>>,
}

impl PduCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::default(),
            per_generation: (capacity / 2).max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Generations> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn get(&self, id: &EventId) -> Option<Arc<Pdu>> {
        let mut inner = self.lock();
        if let Some(pdu) = inner.young.get(id) {
            return Some(pdu.clone());
        }
        let pdu = inner.old.remove(id)?;
        self.insert_locked(&mut inner, pdu.clone());
        Some(pdu)
    }

    pub(crate) fn insert(&self, pdu: Arc<Pdu>) {
        let mut inner = self.lock();
        self.insert_locked(&mut inner, pdu);
    }

    fn insert_locked(&self, inner: &mut Generations, pdu: Arc<Pdu>) {
        if inner.young.len() >= self.per_generation {
            inner.old = std::mem::take(&mut inner.young);
        }
        inner.young.insert(pdu.owned_event_id().clone(), pdu);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        let inner = self.lock();
        inner.young.len() + inner.old.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn message(n: u64) -> Pdu {
        let json = serde_json::json!({
            "type": "m.room.message", "room_id": "!r:x", "sender": "@a:x",
            "content": {"body": n.to_string()}, "origin_server_ts": n, "depth": n,
            "prev_events": [], "auth_events": [], "hashes": {"sha256": "x"}, "signatures": {},
        });
        let rules = ruma::RoomVersionId::V11.rules().unwrap();
        Pdu::from_json_str(&json.to_string(), &rules).unwrap()
    }

    #[test]
    fn bounded_and_keeps_what_is_used() {
        let cache = PduCache::new(4);
        let pdus: Vec<Arc<Pdu>> = (0..6).map(|i| Arc::new(message(i))).collect();
        for pdu in &pdus[..2] {
            cache.insert(pdu.clone());
        }
        // The first two age; the first is used again, so it survives the next turnover.
        cache.insert(pdus[2].clone());
        assert!(cache.get(pdus[0].event_id()).is_some());
        cache.insert(pdus[3].clone());
        cache.insert(pdus[4].clone());
        cache.insert(pdus[5].clone());
        assert!(cache.len() <= 4);
        assert!(
            cache.get(pdus[1].event_id()).is_none(),
            "unused and old: gone"
        );
        assert!(cache.get(pdus[5].event_id()).is_some());
    }
}
