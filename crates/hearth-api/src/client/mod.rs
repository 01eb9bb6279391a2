pub(crate) mod account;
pub(crate) mod discovery;
pub(crate) mod membership;
pub(crate) mod message;
pub(crate) mod room;
mod room_access;
pub(crate) mod session;
pub(crate) mod state;
