pub(crate) mod get_state_event_for_key;
pub(crate) mod get_state_events;
pub(crate) mod send_state_event;
