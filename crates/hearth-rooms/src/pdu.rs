//! [`Pdu`]: a persistent data unit as Hearth holds it in memory — the canonical JSON plus the
//! few fields the auth rules and state resolution read, parsed once.

use ruma::events::TimelineEventType;
use ruma::room_version_rules::{
    EventIdFormatVersion, EventsReferenceFormatVersion, RoomVersionRules,
};
use ruma::{
    CanonicalJsonObject, CanonicalJsonValue, EventId, MilliSecondsSinceUnixEpoch, OwnedEventId,
    OwnedRoomId, OwnedUserId, RoomId, UInt, UserId,
};
use serde_json::value::RawValue;

use crate::RoomError;

/// The largest PDU the spec allows, in canonical JSON bytes.
pub const MAX_PDU_BYTES: usize = 65_536;

/// One event of the room graph.
#[derive(Debug, Clone)]
pub struct Pdu {
    event_id: OwnedEventId,
    /// The `room_id` field as the PDU carries it: absent on a v12 create event.
    room_id_field: Option<OwnedRoomId>,
    /// The room the event belongs to (derived from the event id for a v12 create event).
    room_id: OwnedRoomId,
    sender: OwnedUserId,
    origin_server_ts: MilliSecondsSinceUnixEpoch,
    kind: TimelineEventType,
    content: Box<RawValue>,
    state_key: Option<String>,
    prev_events: Vec<OwnedEventId>,
    auth_events: Vec<OwnedEventId>,
    redacts: Option<OwnedEventId>,
    depth: u64,
    json: CanonicalJsonObject,
    rejected: bool,
    /// The rules of the event's room version (redaction needs them).
    rules: RoomVersionRules,
}

/// The canonical JSON text of an object: serde_json writes a `BTreeMap` sorted and compact, and
/// canonical values hold only strings, integers, bools, nulls, arrays and objects.
pub fn canonical_string(object: &CanonicalJsonObject) -> String {
    #[allow(clippy::expect_used)]
    serde_json::to_string(object).expect("string keys and integer numbers always serialise")
}

/// Redact an event per its room version: strip everything the redaction algorithm does not
/// keep. Signatures and hashes survive, so a redacted event still verifies.
pub fn redact(
    object: CanonicalJsonObject,
    rules: &RoomVersionRules,
) -> Result<CanonicalJsonObject, RoomError> {
    ruma::canonical_json::redact(object, &rules.redaction, None)
        .map_err(|e| RoomError::Invalid(format!("cannot redact: {e}")))
}

fn invalid(why: impl Into<String>) -> RoomError {
    RoomError::Invalid(why.into())
}

fn string_field<'a>(object: &'a CanonicalJsonObject, field: &str) -> Result<&'a str, RoomError> {
    match object.get(field) {
        Some(CanonicalJsonValue::String(s)) => Ok(s),
        _ => Err(invalid(format!("`{field}` must be a string"))),
    }
}

/// `prev_events` / `auth_events`: plain ids (v3+) or `[id, {hashes}]` pairs (v1, v2).
fn event_refs(
    object: &CanonicalJsonObject,
    field: &str,
    format: &EventsReferenceFormatVersion,
) -> Result<Vec<OwnedEventId>, RoomError> {
    let Some(CanonicalJsonValue::Array(items)) = object.get(field) else {
        return Err(invalid(format!("`{field}` must be an array")));
    };
    items
        .iter()
        .map(|item| {
            let id = match (format, item) {
                (EventsReferenceFormatVersion::V1, CanonicalJsonValue::Array(pair)) => {
                    match pair.first() {
                        Some(CanonicalJsonValue::String(id)) => id,
                        _ => return Err(invalid(format!("bad entry in `{field}`"))),
                    }
                }
                (EventsReferenceFormatVersion::V1, _) => {
                    return Err(invalid(format!(
                        "`{field}` entries must be [id, hashes] pairs"
                    )));
                }
                (_, CanonicalJsonValue::String(id)) => id,
                _ => return Err(invalid(format!("`{field}` entries must be event ids"))),
            };
            OwnedEventId::try_from(id.as_str()).map_err(|e| invalid(format!("`{field}`: {e}")))
        })
        .collect()
}

/// The deepest an event can be: the largest integer canonical JSON allows.
pub const MAX_DEPTH: u64 = (1 << 53) - 1;

impl Pdu {
    /// Parse a PDU whose event id is `event_id` (computed by the caller for v3+ rooms, read from
    /// the event for v1 and v2).
    pub fn from_canonical(
        json: CanonicalJsonObject,
        rules: &RoomVersionRules,
    ) -> Result<Self, RoomError> {
        let size = canonical_string(&json).len();
        if size > MAX_PDU_BYTES {
            return Err(RoomError::TooLarge {
                size,
                limit: MAX_PDU_BYTES,
            });
        }
        let event_id = match rules.event_id_format {
            EventIdFormatVersion::V1 => OwnedEventId::try_from(string_field(&json, "event_id")?)
                .map_err(|e| invalid(format!("`event_id`: {e}")))?,
            _ => {
                let hash = ruma::signatures::reference_hash(&json, rules)
                    .map_err(|e| invalid(e.to_string()))?;
                OwnedEventId::try_from(format!("${hash}"))
                    .map_err(|e| invalid(format!("event id: {e}")))?
            }
        };
        let kind = TimelineEventType::from(string_field(&json, "type")?);
        let room_id_field = match json.get("room_id") {
            Some(CanonicalJsonValue::String(id)) => Some(
                OwnedRoomId::try_from(id.as_str())
                    .map_err(|e| invalid(format!("`room_id`: {e}")))?,
            ),
            Some(_) => return Err(invalid("`room_id` must be a string")),
            None => None,
        };
        let room_id = match (&room_id_field, &kind) {
            (Some(id), _) => id.clone(),
            (None, TimelineEventType::RoomCreate)
                if rules.authorization.room_create_event_id_as_room_id =>
            {
                let (_, hash) = event_id.as_str().split_at(1);
                OwnedRoomId::try_from(format!("!{hash}"))
                    .map_err(|e| invalid(format!("room id: {e}")))?
            }
            (None, _) => return Err(invalid("`room_id` is missing")),
        };
        let sender = OwnedUserId::try_from(string_field(&json, "sender")?)
            .map_err(|e| invalid(format!("`sender`: {e}")))?;
        let origin_server_ts = match json.get("origin_server_ts") {
            Some(CanonicalJsonValue::Integer(ts)) => UInt::try_from(i64::from(*ts))
                .map(MilliSecondsSinceUnixEpoch)
                .map_err(|_| invalid("`origin_server_ts` must not be negative"))?,
            _ => return Err(invalid("`origin_server_ts` must be an integer")),
        };
        let depth = match json.get("depth") {
            Some(CanonicalJsonValue::Integer(d)) => {
                u64::try_from(i64::from(*d)).map_err(|_| invalid("`depth` must not be negative"))?
            }
            _ => return Err(invalid("`depth` must be an integer")),
        };
        let content = match json.get("content") {
            Some(value @ CanonicalJsonValue::Object(_)) => {
                serde_json::value::to_raw_value(value)
                    .map_err(|e| invalid(format!("`content`: {e}")))?
            }
            _ => return Err(invalid("`content` must be an object")),
        };
        let state_key = match json.get("state_key") {
            Some(CanonicalJsonValue::String(k)) => Some(k.clone()),
            None => None,
            Some(_) => return Err(invalid("`state_key` must be a string")),
        };
        // Redactions name their target at the top level before v11, in `content` since (a
        // top-level copy some servers still add for old clients is ignored there).
        let redacts = if rules.redaction.content_field_redacts {
            match json.get("content") {
                Some(CanonicalJsonValue::Object(c)) => c.get("redacts"),
                _ => None,
            }
        } else {
            json.get("redacts")
        };
        let redacts = match redacts {
            Some(CanonicalJsonValue::String(id)) => Some(id.as_str()),
            _ => None,
        }
        .map(|id| OwnedEventId::try_from(id).map_err(|e| invalid(format!("`redacts`: {e}"))))
        .transpose()?;
        let prev_events = event_refs(&json, "prev_events", &rules.events_reference_format)?;
        let auth_events = event_refs(&json, "auth_events", &rules.events_reference_format)?;
        Ok(Self {
            event_id,
            room_id_field,
            room_id,
            sender,
            origin_server_ts,
            kind,
            content,
            state_key,
            prev_events,
            auth_events,
            redacts,
            depth,
            json,
            rejected: false,
            rules: rules.clone(),
        })
    }

    /// The row the store keeps of this event, between state groups `before` and `after`.
    pub(crate) fn new_event(
        &self,
        before: i64,
        after: i64,
        txn: Option<hearth_store::TxnKey>,
    ) -> hearth_store::NewEvent {
        hearth_store::NewEvent {
            event_id: self.event_id.clone(),
            sender: self.sender.clone(),
            event_type: self.kind.to_string(),
            state_key: self.state_key.clone(),
            depth: i64::try_from(self.depth).unwrap_or(i64::MAX),
            origin_server_ts: i64::from(self.origin_server_ts.get()),
            json: self.canonical_json(),
            prev_events: self.prev_events.clone(),
            auth_events: self.auth_events.clone(),
            state_group_before: before,
            state_group_after: after,
            txn,
        }
    }

    /// Parse a PDU stored as canonical JSON text.
    pub fn from_json_str(json: &str, rules: &RoomVersionRules) -> Result<Self, RoomError> {
        let object: CanonicalJsonObject =
            serde_json::from_str(json).map_err(|e| invalid(format!("not canonical JSON: {e}")))?;
        Self::from_canonical(object, rules)
    }

    pub fn event_id(&self) -> &EventId {
        &self.event_id
    }

    pub fn owned_event_id(&self) -> &OwnedEventId {
        &self.event_id
    }

    /// The room this event belongs to.
    pub fn room(&self) -> &RoomId {
        &self.room_id
    }

    pub fn sender(&self) -> &UserId {
        &self.sender
    }

    pub fn kind(&self) -> &TimelineEventType {
        &self.kind
    }

    pub fn state_key(&self) -> Option<&str> {
        self.state_key.as_deref()
    }

    /// `(type, state_key)` if this is a state event.
    pub fn state_tuple(&self) -> Option<(String, String)> {
        self.state_key
            .as_ref()
            .map(|k| (self.kind.to_string(), k.clone()))
    }

    pub fn content(&self) -> &RawValue {
        &self.content
    }

    /// The content parsed (`Null` if it is not JSON, which a parsed PDU's content always is).
    pub fn content_json(&self) -> serde_json::Value {
        serde_json::from_str(self.content.get()).unwrap_or(serde_json::Value::Null)
    }

    pub fn depth(&self) -> u64 {
        self.depth
    }

    pub fn origin_server_ts(&self) -> MilliSecondsSinceUnixEpoch {
        self.origin_server_ts
    }

    pub fn prev_event_ids(&self) -> &[OwnedEventId] {
        &self.prev_events
    }

    pub fn auth_event_ids(&self) -> &[OwnedEventId] {
        &self.auth_events
    }

    /// The full PDU.
    pub fn json(&self) -> &CanonicalJsonObject {
        &self.json
    }

    /// The PDU as canonical JSON text.
    pub fn canonical_json(&self) -> String {
        canonical_string(&self.json)
    }
}

impl Pdu {
    /// The event as clients see it (the client-server API's "client event" format).
    pub fn to_client_event(&self) -> serde_json::Value {
        let mut event = serde_json::json!({
            "event_id": self.event_id,
            "room_id": self.room_id,
            "sender": self.sender,
            "type": self.kind.to_string(),
            "origin_server_ts": self.origin_server_ts,
            "content": self.content,
            "unsigned": {},
        });
        if let Some(key) = &self.state_key {
            event["state_key"] = key.clone().into();
        }
        if let Some(redacts) = &self.redacts {
            event["redacts"] = redacts.to_string().into();
        }
        event
    }

    /// The event as stripped state (type, state key, sender and content only).
    pub fn to_stripped(&self) -> serde_json::Value {
        serde_json::json!({
            "type": self.kind.to_string(),
            "state_key": self.state_key,
            "sender": self.sender,
            "content": self.content,
        })
    }

    /// This event with the redaction algorithm of its room version applied.
    pub fn redacted(&self) -> Result<Self, RoomError> {
        let mut pdu = Self::from_canonical(redact(self.json.clone(), &self.rules)?, &self.rules)?;
        // v1/v2 ids survive redaction; v3+ ids are hashes of the redacted form anyway.
        pdu.event_id = self.event_id.clone();
        Ok(pdu)
    }

    /// `content.membership` of a member event.
    pub fn membership(&self) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct Membership {
            membership: String,
        }
        serde_json::from_str::<Membership>(self.content.get())
            .ok()
            .map(|m| m.membership)
    }
}

impl ruma::state_res::Event for Pdu {
    type Id = OwnedEventId;

    fn event_id(&self) -> &Self::Id {
        &self.event_id
    }

    fn room_id(&self) -> Option<&RoomId> {
        self.room_id_field.as_deref()
    }

    fn sender(&self) -> &UserId {
        &self.sender
    }

    fn origin_server_ts(&self) -> MilliSecondsSinceUnixEpoch {
        self.origin_server_ts
    }

    fn event_type(&self) -> &TimelineEventType {
        &self.kind
    }

    fn content(&self) -> &RawValue {
        &self.content
    }

    fn state_key(&self) -> Option<&str> {
        self.state_key.as_deref()
    }

    fn prev_events(&self) -> Box<dyn DoubleEndedIterator<Item = &Self::Id> + '_> {
        Box::new(self.prev_events.iter())
    }

    fn auth_events(&self) -> Box<dyn DoubleEndedIterator<Item = &Self::Id> + '_> {
        Box::new(self.auth_events.iter())
    }

    fn redacts(&self) -> Option<&Self::Id> {
        self.redacts.as_ref()
    }

    fn rejected(&self) -> bool {
        self.rejected
    }
}

#[cfg(test)]
mod tests;
