//! `/_matrix/federation/v1/{event,state,state_ids,get_missing_events}`: partners reading our
//! rooms' events (only in rooms they have a member in; see `hearth-federation/src/reads.rs`).

pub(crate) mod get_event;
pub(crate) mod get_missing_events;
pub(crate) mod get_room_state;
pub(crate) mod get_room_state_ids;
