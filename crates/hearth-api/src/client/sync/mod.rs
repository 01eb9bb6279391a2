pub(crate) mod sync_events;
