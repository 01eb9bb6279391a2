//! The plain data that crosses the storage boundary.

use std::collections::BTreeMap;

use ruma::{
    DeviceId, OwnedDeviceId, OwnedEventId, OwnedRoomId, OwnedTransactionId, OwnedUserId,
    RoomVersionId,
};

/// A state map as stored: `(event type, state key) -> event id`.
pub type StateRows = BTreeMap<(String, String), OwnedEventId>;

/// Identifies a client transaction: retries with the same key get the same event. A
/// transaction id is scoped to a device and the request's path (spec: "Transaction
/// identifiers"), which names the room and the `endpoint`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TxnKey {
    pub room_id: OwnedRoomId,
    pub user_id: OwnedUserId,
    pub device_id: OwnedDeviceId,
    /// The rest of the path: `send/{eventType}` or `redact/{eventId}`.
    pub endpoint: String,
    pub txn_id: OwnedTransactionId,
}

/// One changed key of a state group: `None` removes the key.
pub type StateDelta = ((String, String), Option<OwnedEventId>);

/// A state group to create: its parent (or `None` for a full snapshot) and its delta.
#[derive(Debug, Clone)]
pub struct NewStateGroup {
    pub id: i64,
    pub parent: Option<i64>,
    pub chain_len: i64,
    pub delta: Vec<StateDelta>,
}

/// An event to persist, already built, hashed, signed and authorised.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event_id: OwnedEventId,
    pub sender: OwnedUserId,
    pub event_type: String,
    pub state_key: Option<String>,
    pub depth: i64,
    pub origin_server_ts: i64,
    /// The PDU as canonical JSON.
    pub json: String,
    pub prev_events: Vec<OwnedEventId>,
    pub auth_events: Vec<OwnedEventId>,
    pub state_group_before: i64,
    pub state_group_after: i64,
    pub txn: Option<TxnKey>,
}

/// Everything one room changes in one commit. Either all of it is persisted or none.
#[derive(Debug, Clone)]
pub struct RoomBatch {
    pub room_id: OwnedRoomId,
    pub room_version: RoomVersionId,
    /// The batch creates the room (it then starts with the create event).
    pub creates_room: bool,
    pub state_groups: Vec<NewStateGroup>,
    pub events: Vec<NewEvent>,
    /// The room's complete set of forward extremities after the batch.
    pub forward_extremities: Vec<OwnedEventId>,
    /// The state group of the room's current state after the batch.
    pub current_state_group: i64,
    /// Current-state keys the batch changes.
    pub current_state: Vec<((String, String), OwnedEventId)>,
    /// Memberships the batch changes: user, membership, the member event (one of `events`).
    pub memberships: Vec<(OwnedUserId, String, OwnedEventId)>,
    /// Redactions to apply: (redacted event, redaction event of this batch).
    pub redactions: Vec<(OwnedEventId, OwnedEventId)>,
    /// Relations the batch's events declare (`content["m.relates_to"]` with a `rel_type`).
    pub relations: Vec<NewRelation>,
    /// Other servers' events the batch keeps apart from the DAG (rejected, soft-failed).
    pub apart: Vec<ApartEvent>,
}

/// A local user's membership of a room this server is not in (`outside_memberships`): an
/// invite from another server, or the rejection of one. The newest of it and the user's
/// `room_memberships` row for the room is the user's membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutsideMembership {
    pub room_id: OwnedRoomId,
    pub user_id: OwnedUserId,
    /// `invite` or `leave`.
    pub membership: String,
    pub event_id: OwnedEventId,
    pub room_version: RoomVersionId,
    /// The member event as canonical JSON (an invite with both servers' signatures).
    pub event_json: String,
    /// The stripped state the user may see of the room, as a JSON array of client events.
    pub stripped_state: String,
}

/// An event kept apart from its room's DAG (`events_apart`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApartEvent {
    pub event_id: OwnedEventId,
    pub status: ApartStatus,
    /// Why (for rejected and soft-failed events).
    pub reason: Option<String>,
    /// The PDU as canonical JSON.
    pub json: String,
    /// Its auth events, so that auth chains walk through it.
    pub auth_events: Vec<OwnedEventId>,
}

/// Why an event is not in its room's DAG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApartStatus {
    Rejected,
    SoftFailed,
    Outlier,
}

impl ApartStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rejected => "rejected",
            Self::SoftFailed => "soft_failed",
            Self::Outlier => "outlier",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "rejected" => Some(Self::Rejected),
            "soft_failed" => Some(Self::SoftFailed),
            "outlier" => Some(Self::Outlier),
            _ => None,
        }
    }
}

/// An event's relation to its parent, as `content["m.relates_to"]` states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRelation {
    /// The child: one of the batch's events.
    pub event_id: OwnedEventId,
    /// The parent.
    pub relates_to: OwnedEventId,
    pub rel_type: String,
}

/// A user's membership of a room, as the membership index holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub room_id: OwnedRoomId,
    pub user_id: OwnedUserId,
    pub membership: String,
    pub event_id: OwnedEventId,
    pub stream_ordering: i64,
}

/// An event as stored.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub stream_ordering: i64,
    pub room_version: RoomVersionId,
    pub event_id: OwnedEventId,
    pub room_id: OwnedRoomId,
    pub depth: i64,
    pub state_group_before: i64,
    pub state_group_after: i64,
    /// The PDU as canonical JSON.
    pub json: String,
}

/// What the append pipeline needs to resume a room after a restart.
#[derive(Debug, Clone)]
pub struct RoomHead {
    pub room_version: RoomVersionId,
    pub current_state_group: i64,
    /// How many ancestors the current state group has.
    pub current_chain_len: i64,
    /// Forward extremities with their depths.
    pub extremities: Vec<(OwnedEventId, i64)>,
}

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredUser {
    pub user_id: OwnedUserId,
    /// An argon2id PHC string, `None` for an account without a password (or a deactivated one).
    pub password_hash: Option<String>,
    pub is_admin: bool,
    pub is_guest: bool,
    pub deactivated: bool,
    pub created_at_ms: i64,
}

/// A device as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDevice {
    pub user_id: OwnedUserId,
    pub device_id: OwnedDeviceId,
    pub display_name: Option<String>,
    pub last_seen_ms: Option<i64>,
    pub created_at_ms: i64,
}

/// Whom an access token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenOwner {
    pub user_id: OwnedUserId,
    pub device_id: OwnedDeviceId,
    pub is_admin: bool,
    pub is_guest: bool,
    pub deactivated: bool,
    /// When the token expires, if it does.
    pub expires_at_ms: Option<i64>,
    /// The token came from a refresh whose old refresh token still works; the first use of the
    /// token retires it ([`crate::Store::retire_refreshed`]).
    pub retires_refresh: bool,
}

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub user_id: OwnedUserId,
    pub password_hash: Option<String>,
    pub is_admin: bool,
    pub is_guest: bool,
}

/// A signed-in device: the device (created if new) and the hash of its fresh access token.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub device_id: OwnedDeviceId,
    /// Only used when the device is new: a known device keeps its name (as the spec asks of
    /// `initial_device_display_name`).
    pub display_name: Option<String>,
    pub token_hash: String,
    /// When the access token stops working (refreshable sessions only).
    pub expires_at_ms: Option<i64>,
    /// The hash of the session's refresh token, if it has one.
    pub refresh_token_hash: Option<String>,
}

/// Which of a user's devices (each with its access tokens) a change removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoveDevices<'a> {
    None,
    All,
    AllExcept(&'a DeviceId),
}

/// A user's profile. Both fields are `None` for a user who never set them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    pub displayname: Option<String>,
    /// An `mxc://` URI, as the client gave it.
    pub avatar_url: Option<String>,
}

/// One account-data entry as of its last change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountDataRow {
    /// `None` for global account data.
    pub room_id: Option<OwnedRoomId>,
    pub data_type: String,
    /// The event content: a JSON object.
    pub content: String,
    /// The account-data stream position of the entry's last change.
    pub stream_ordering: i64,
}

/// A registration token as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationTokenRow {
    pub token: String,
    /// How many registrations it may complete; `None`: unlimited.
    pub uses_allowed: Option<i64>,
    /// Registrations that passed the token stage and have not finished yet.
    pub pending: i64,
    /// Registrations it let through.
    pub completed: i64,
    /// Milliseconds since the Unix epoch after which it is invalid; `None`: never.
    pub expiry_ms: Option<i64>,
}
