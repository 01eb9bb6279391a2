pub(crate) mod send_message_event;
