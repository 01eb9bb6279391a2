//! Partners' users joining rooms of ours (`make_join`, `send_join`).

pub(crate) mod create_join_event;
pub(crate) mod prepare_join_event;
