pub(crate) mod create_typing_event;
