use hearth_store::StoreError;

/// Why an event could not be built, authorised or appended.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RoomError {
    #[error("unknown room {0}")]
    UnknownRoom(ruma::OwnedRoomId),
    #[error("room {0} exists already")]
    RoomExists(ruma::OwnedRoomId),
    #[error("unsupported room version {0}")]
    UnsupportedVersion(ruma::RoomVersionId),
    #[error("event is not allowed: {0}")]
    Forbidden(String),
    #[error("event is too large: {size} bytes, the limit is {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("invalid event: {0}")]
    Invalid(String),
    /// A relation the client-server API refuses (a thread off an event that relates itself).
    #[error("invalid relation: {0}")]
    BadRelation(String),
    #[error("an event the room depends on is missing: {0}")]
    MissingEvent(ruma::OwnedEventId),
    #[error("state resolution failed: {0}")]
    StateResolution(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the room's append queue has stopped")]
    Shutdown,
}
