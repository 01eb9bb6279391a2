//! `/_matrix/federation/v1/user/keys/*`: the end-to-end keys of this server's users.

pub(crate) mod claim_keys;
pub(crate) mod get_keys;
