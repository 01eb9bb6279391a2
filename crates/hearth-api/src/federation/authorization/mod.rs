//! `/_matrix/federation/v1/event_auth`.

pub(crate) mod get_event_authorization;
