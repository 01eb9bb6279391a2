pub(crate) mod get_message_events;
pub(crate) mod send_message_event;
