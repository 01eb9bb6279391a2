pub(crate) mod invite_user;
pub(crate) mod join_room_by_id;
pub(crate) mod leave_room;
