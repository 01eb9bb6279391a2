//! The authorisation rules, via ruma's state-res: which auth events an event needs, and whether
//! it passes against its auth events and against a room state.

use std::collections::HashMap;
use std::sync::Arc;

use ruma::events::{StateEventType, TimelineEventType};
use ruma::room_version_rules::AuthorizationRules;
use ruma::{OwnedEventId, UserId};
use serde_json::value::RawValue;

use crate::{Pdu, RoomError, RoomState};

/// The `(type, state_key)` pairs of the state events that authorise an event of this shape.
pub fn auth_types(
    kind: &TimelineEventType,
    sender: &UserId,
    state_key: Option<&str>,
    content: &RawValue,
    rules: &AuthorizationRules,
) -> Result<Vec<(StateEventType, String)>, RoomError> {
    ruma::state_res::auth_types_for_event(kind, sender, state_key, content, rules)
        .map_err(RoomError::Invalid)
}

/// Pick an event's auth events out of a room state.
pub fn select_auth_events(
    state: &RoomState,
    kind: &TimelineEventType,
    sender: &UserId,
    state_key: Option<&str>,
    content: &RawValue,
    rules: &AuthorizationRules,
) -> Result<Vec<Arc<Pdu>>, RoomError> {
    Ok(auth_types(kind, sender, state_key, content, rules)?
        .into_iter()
        .filter_map(|key| state.get(&key).cloned())
        .collect())
}

/// Check an event against its own auth events (the state-independent rules, which also check
/// that the auth events are the right ones) and then against `state`. From room version 12 the
/// create event is no auth event but is still consulted; it is taken from `state`.
pub fn check(
    rules: &AuthorizationRules,
    pdu: &Pdu,
    auth_events: &[Arc<Pdu>],
    state: impl Fn(&StateEventType, &str) -> Option<Arc<Pdu>>,
) -> Result<(), RoomError> {
    let by_id: HashMap<&OwnedEventId, &Arc<Pdu>> = auth_events
        .iter()
        .map(|p| (p.owned_event_id(), p))
        .collect();
    let create = state(&StateEventType::RoomCreate, "");
    ruma::state_res::check_state_independent_auth_rules(rules, pdu, |id| {
        by_id
            .get(&id.to_owned())
            .map(|p| Arc::clone(p))
            .or_else(|| create.clone().filter(|c| c.event_id() == id))
    })
    .map_err(RoomError::Forbidden)?;
    ruma::state_res::check_state_dependent_auth_rules(rules, pdu, state)
        .map_err(RoomError::Forbidden)
}

/// Only the state-dependent auth rules, against `state`: for an event whose own auth events
/// were checked already (receiving a PDU, steps 5 and 6), which need not be the state's.
pub fn check_by_state(
    rules: &AuthorizationRules,
    pdu: &Pdu,
    state: impl Fn(&StateEventType, &str) -> Option<Arc<Pdu>>,
) -> Result<(), RoomError> {
    ruma::state_res::check_state_dependent_auth_rules(rules, pdu, state)
        .map_err(RoomError::Forbidden)
}

/// [`check`] against a state map.
pub fn check_against(
    rules: &AuthorizationRules,
    pdu: &Pdu,
    auth_events: &[Arc<Pdu>],
    state: &RoomState,
) -> Result<(), RoomError> {
    check(rules, pdu, auth_events, |kind, key| {
        state.get(&(kind.clone(), key.to_owned())).cloned()
    })
}
