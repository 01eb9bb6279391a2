pub(crate) mod aliases;
pub(crate) mod create_room;
pub(crate) mod get_event_by_timestamp;
pub(crate) mod get_room_event;
pub(crate) mod report_content;
pub(crate) mod upgrade_room;
