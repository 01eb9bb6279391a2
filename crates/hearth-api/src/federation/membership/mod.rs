//! Partners' users joining and leaving rooms of ours (`make_join`, `send_join`,
//! `make_leave`, `send_leave`), and partners inviting our users to theirs (`invite`).

pub(crate) mod create_invite;
pub(crate) mod create_join_event;
pub(crate) mod create_leave_event;
pub(crate) mod prepare_join_event;
pub(crate) mod prepare_leave_event;
