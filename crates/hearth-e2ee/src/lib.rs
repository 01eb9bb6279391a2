//! End-to-end encryption, the server's part: it never sees a plaintext or a private key, but
//! it keeps what devices publish (identity, one-time, fallback and cross-signing keys), hands
//! out one-time keys exactly once, tells users whose device lists changed, queues
//! send-to-device messages, stores encrypted key backups, and keeps each user's dehydrated
//! device.
//!
//! Rules live here; rows live in `hearth-store`. Keys are kept as the canonical JSON their
//! owner signed, checked for the ids and signatures the spec requires.

mod backup;
mod cross_signing;
mod dehydrated;
mod device_lists;
mod keys;
mod to_device;

use hearth_store::{Store, StoreError};
use ruma::OwnedServerName;

pub use backup::{BackupVersionInfo, RoomKeys};
pub use cross_signing::{SignatureFailure, SigningKeysUpload};
pub use dehydrated::DehydratedUpload;
pub use device_lists::DeviceListChanges;
pub use hearth_store::RoomKeyScope;
pub use keys::{ClaimResult, MAX_CLAIMS, QueryResult, UserDevices};
pub use to_device::{MAX_TO_DEVICE_BATCH, ToDeviceEvent};

/// Why an E2EE request was refused.
#[derive(Debug, thiserror::Error)]
pub enum E2eeError {
    /// A request that breaks the spec's rules (400 `M_INVALID_PARAM`).
    #[error("{0}")]
    InvalidParam(String),
    /// A key or body that does not parse as what it should be (400 `M_BAD_JSON`).
    #[error("{0}")]
    BadJson(String),
    /// A signature that does not verify (400 `M_INVALID_SIGNATURE`).
    #[error("{0}")]
    InvalidSignature(String),
    /// No such backup version or key (404 `M_NOT_FOUND`).
    #[error("{0}")]
    NotFound(String),
    /// Keys sent to a backup version that is not the current one (403
    /// `M_WRONG_ROOM_KEYS_VERSION`, with the current version).
    #[error("backup version {given} is not the current one")]
    WrongBackupVersion {
        given: String,
        current: Option<String>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The E2EE service: cheap to clone.
#[derive(Clone, Debug)]
pub struct E2ee {
    store: Store,
    server_name: OwnedServerName,
}

impl E2ee {
    pub fn new(store: Store, server_name: OwnedServerName) -> Self {
        Self { store, server_name }
    }

    /// Whether a user lives on this server (remote users' keys need federation).
    fn is_local(&self, user: &ruma::UserId) -> bool {
        user.server_name() == self.server_name
    }
}

/// Parse JSON the client sent into canonical JSON (the form signatures cover).
fn canonical_object(json: &str, what: &str) -> Result<ruma::CanonicalJsonObject, E2eeError> {
    serde_json::from_str(json).map_err(|e| E2eeError::BadJson(format!("{what}: {e}")))
}
