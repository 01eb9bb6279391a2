//! Server-side search of the rooms a user is in.

pub(crate) mod search_events;
