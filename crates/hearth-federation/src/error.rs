//! What can go wrong talking to other servers. `hearth-api` maps these to Matrix errors.

use ruma::OwnedServerName;

#[derive(Debug, thiserror::Error)]
pub enum FederationError {
    /// Federation is off, or the server is not a partner: nothing was sent or read.
    #[error("{0} is not a federation partner of this server")]
    NotAllowed(OwnedServerName),
    /// Federation with ourselves makes no sense (and would loop).
    #[error("{0} is this server")]
    Ourselves(OwnedServerName),
    /// The server's name could not be turned into an address.
    #[error("cannot find {server}: {why}")]
    Discovery {
        server: OwnedServerName,
        why: String,
    },
    /// The connection, TLS or HTTP exchange failed.
    #[error("cannot reach {server}: {why}")]
    Unreachable {
        server: OwnedServerName,
        why: String,
    },
    /// The server answered with an error.
    #[error("{server} answered {status}: {body}")]
    Remote {
        server: OwnedServerName,
        status: http::StatusCode,
        /// The Matrix error code, when the body had one.
        errcode: Option<String>,
        body: String,
    },
    /// The server answered something we cannot use.
    #[error("bad answer from {server}: {why}")]
    BadResponse {
        server: OwnedServerName,
        why: String,
    },
    /// The request's `X-Matrix` authorization is missing or malformed.
    #[error("{0}")]
    MissingAuthorization(String),
    /// The request was signed for another server.
    #[error("this request is for {0}, not for this server")]
    WrongDestination(OwnedServerName),
    /// The request's signature does not verify.
    #[error("the request's signature does not verify: {0}")]
    BadSignature(String),
    /// The signing key the request names cannot be found or has expired.
    #[error("cannot get key {key_id} of {server}: {why}")]
    UnknownKey {
        server: OwnedServerName,
        key_id: String,
        why: String,
    },
    /// The asking server speaks for a user or event that is not its own.
    #[error("{0}")]
    NotYours(String),
    /// The room's version is not one the asking server speaks.
    #[error("the room's version {0} is not one the asking server supports")]
    IncompatibleVersion(ruma::RoomVersionId),
    /// What the room's rules say.
    #[error(transparent)]
    Room(hearth_rooms::RoomError),
    /// An inbound request that breaks the spec's rules (a transaction too large, say).
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Store(#[from] hearth_store::StoreError),
    /// A configuration problem found at start (certificate files, CA bundle, overrides).
    #[error("{0}")]
    Config(String),
}
