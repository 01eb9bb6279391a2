//! End-to-end encryption keys: identity, one-time, fallback and cross-signing keys
//! (`hearth-e2ee` holds the rules).

pub(crate) mod claim_keys;
pub(crate) mod get_key_changes;
pub(crate) mod get_keys;
pub(crate) mod upload_keys;
pub(crate) mod upload_signatures;
pub(crate) mod upload_signing_keys;
