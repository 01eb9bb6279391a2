//! State resolution (v2, and v2.1 from room version 12) over in-memory events, via ruma.
//!
//! The caller loads every event the resolution may read: the events of each state set and their
//! full auth chains. Everything here is synchronous CPU work; large resolutions belong on a
//! blocking thread.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use ruma::room_version_rules::RoomVersionRules;
use ruma::state_res::StateMap;
use ruma::state_res::utils::event_id_set::EventIdSet;
use ruma::{EventId, OwnedEventId};

use crate::{Pdu, RoomError, StateIds};

/// Events by id, as resolution reads them.
pub type EventMap = HashMap<OwnedEventId, Arc<Pdu>>;

/// Every event reachable from `start` through `auth_events` (not including `start` itself
/// unless it is reachable from another start event).
pub fn auth_chain(
    start: impl IntoIterator<Item = OwnedEventId>,
    events: &EventMap,
) -> HashSet<OwnedEventId> {
    let mut seen = HashSet::new();
    let mut todo: Vec<OwnedEventId> = start
        .into_iter()
        .filter_map(|id| events.get(&id))
        .flat_map(|p| p.auth_event_ids().to_vec())
        .collect();
    while let Some(id) = todo.pop() {
        if seen.insert(id.clone())
            && let Some(pdu) = events.get(&id)
        {
            todo.extend(pdu.auth_event_ids().iter().cloned());
        }
    }
    seen
}

/// The conflicted state subgraph (room version 12): events that lie on an auth-event path from
/// one conflicted event to another — reachable from a conflicted event through `auth_events`,
/// and themselves reaching a conflicted event that way (or being one).
fn conflicted_subgraph(
    conflicted: &HashSet<OwnedEventId>,
    events: &EventMap,
) -> HashSet<OwnedEventId> {
    // Everything below some conflicted event, conflicted events included.
    let mut below: HashSet<OwnedEventId> = conflicted.clone();
    below.extend(auth_chain(conflicted.iter().cloned(), events));

    // Memoised "does this event reach a conflicted event": iterative post-order DFS.
    let mut reaches: HashMap<OwnedEventId, bool> = HashMap::new();
    for start in &below {
        let mut stack = vec![(start.clone(), false)];
        while let Some((id, children_done)) = stack.pop() {
            if reaches.contains_key(&id) {
                continue;
            }
            let auth = events
                .get(&id)
                .map(|p| p.auth_event_ids().to_vec())
                .unwrap_or_default();
            if children_done {
                let value = conflicted.contains(&id)
                    || auth
                        .iter()
                        .any(|a| reaches.get(a).copied().unwrap_or(false));
                reaches.insert(id, value);
            } else {
                stack.push((id, true));
                stack.extend(
                    auth.into_iter()
                        .filter(|a| !reaches.contains_key(a))
                        .map(|a| (a, false)),
                );
            }
        }
    }
    below
        .into_iter()
        .filter(|id| reaches.get(id).copied().unwrap_or(false))
        .collect()
}

/// Resolve several state sets of one room into one.
pub fn resolve(
    rules: &RoomVersionRules,
    states: &[StateIds],
    events: &EventMap,
) -> Result<StateIds, RoomError> {
    if states.len() == 1 {
        return Ok(states[0].clone());
    }
    let v2 = rules.state_res.v2_rules().ok_or_else(|| {
        // NOTSPEC: room version 1 uses the original resolution algorithm, which ruma does not
        // provide and Hearth does not implement yet; local v1 rooms never fork, remote ones will
        // need it.
        RoomError::StateResolution("state resolution v1 (room version 1) is not implemented".into())
    })?;
    let maps: Vec<StateMap<OwnedEventId>> = states
        .iter()
        .map(|s| s.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .collect();
    let auth_chains: Vec<EventIdSet<OwnedEventId>> = states
        .iter()
        .map(|s| {
            auth_chain(s.values().cloned(), events)
                .into_iter()
                .collect()
        })
        .collect();
    let fetch = |id: &EventId| events.get(id).cloned();
    let subgraph = |conflicted: &StateMap<Vec<OwnedEventId>>| {
        let set: HashSet<OwnedEventId> = conflicted.values().flatten().cloned().collect();
        Some(conflicted_subgraph(&set, events).into_iter().collect())
    };
    let resolved = ruma::state_res::resolve(
        &rules.authorization,
        v2,
        maps.iter(),
        auth_chains,
        fetch,
        subgraph,
    )
    .map_err(|e| RoomError::StateResolution(e.to_string()))?;
    Ok(resolved.into_iter().collect())
}

#[cfg(test)]
mod tests;
