pub(crate) mod sync_events;
pub(crate) mod sync_events_v5;
