//! Room state in memory and its conversion to and from the stored form.

use std::collections::BTreeMap;
use std::sync::Arc;

use ruma::OwnedEventId;
use ruma::events::StateEventType;

use crate::Pdu;

/// A room state: `(type, state_key) -> event`.
pub type RoomState = BTreeMap<(StateEventType, String), Arc<Pdu>>;

/// A room state by id only, the form state resolution works on.
pub type StateIds = BTreeMap<(StateEventType, String), OwnedEventId>;

/// The state events (all with the empty state key) a would-be member may see of a room it is
/// invited to or knocks on: "stripped state", in the client-server API and in federation's
/// `invite_room_state`.
/// <https://spec.matrix.org/v1.16/client-server-api/#stripped-state>
pub const STRIPPED_STATE_TYPES: &[&str] = &[
    "m.room.create",
    "m.room.join_rules",
    "m.room.name",
    "m.room.avatar",
    "m.room.topic",
    "m.room.canonical_alias",
    "m.room.encryption",
];

/// Ids of a room state.
pub fn ids_of(state: &RoomState) -> StateIds {
    state
        .iter()
        .map(|(k, p)| (k.clone(), p.owned_event_id().clone()))
        .collect()
}

/// Stored state rows to typed keys.
pub fn from_rows(rows: hearth_store::StateRows) -> StateIds {
    rows.into_iter()
        .map(|((t, k), id)| ((StateEventType::from(t), k), id))
        .collect()
}

/// The `(type, state_key)` of a state event as the stored form writes it.
pub fn row_key(key: &(StateEventType, String)) -> (String, String) {
    (key.0.to_string(), key.1.clone())
}
