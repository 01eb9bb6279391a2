//! Building this server's own events: fill in the PDU fields, hash, sign, derive the event id.

use ruma::events::TimelineEventType;
use ruma::room_version_rules::{
    EventIdFormatVersion, EventsReferenceFormatVersion, RoomVersionRules,
};
use ruma::{
    CanonicalJsonObject, CanonicalJsonValue, MilliSecondsSinceUnixEpoch, OwnedEventId, RoomId,
    UserId,
};

use hearth_keys::SigningKey;

use crate::{Pdu, RoomError};

/// What a sender wants to say; the pipeline turns it into a PDU.
#[derive(Debug, Clone)]
pub struct EventDraft {
    pub kind: TimelineEventType,
    /// `Some` for state events.
    pub state_key: Option<String>,
    /// Must be a JSON object.
    pub content: serde_json::Value,
    /// For redactions: the event being redacted.
    pub redacts: Option<OwnedEventId>,
}

/// The longest event type and state key the spec allows, in bytes.
pub const MAX_KEY_BYTES: usize = 255;

impl EventDraft {
    /// Event types and state keys are capped at 255 bytes.
    pub fn check_limits(&self) -> Result<(), RoomError> {
        let kind = self.kind.to_string();
        if kind.is_empty() || kind.len() > MAX_KEY_BYTES {
            return Err(RoomError::Invalid(format!(
                "event type must be 1 to {MAX_KEY_BYTES} bytes"
            )));
        }
        if self
            .state_key
            .as_ref()
            .is_some_and(|k| k.len() > MAX_KEY_BYTES)
        {
            return Err(RoomError::Invalid(format!(
                "state key must be at most {MAX_KEY_BYTES} bytes"
            )));
        }
        Ok(())
    }

    pub fn message(kind: impl Into<TimelineEventType>, content: serde_json::Value) -> Self {
        Self {
            kind: kind.into(),
            state_key: None,
            content,
            redacts: None,
        }
    }

    pub fn state(
        kind: impl Into<TimelineEventType>,
        state_key: impl Into<String>,
        content: serde_json::Value,
    ) -> Self {
        Self {
            kind: kind.into(),
            state_key: Some(state_key.into()),
            content,
            redacts: None,
        }
    }

    pub fn redaction(target: OwnedEventId, reason: Option<&str>) -> Self {
        let mut content = serde_json::Map::new();
        if let Some(reason) = reason {
            content.insert("reason".into(), reason.into());
        }
        Self {
            kind: TimelineEventType::RoomRedaction,
            state_key: None,
            content: content.into(),
            redacts: Some(target),
        }
    }
}

/// The room-level facts an event is built against.
pub(crate) struct Frame<'a> {
    pub rules: &'a RoomVersionRules,
    /// `None` only while building a v12 create event, whose id becomes the room id.
    pub room_id: Option<&'a RoomId>,
    pub key: &'a SigningKey,
}

fn reference(pdu: &Pdu, rules: &RoomVersionRules) -> Result<CanonicalJsonValue, RoomError> {
    let id = CanonicalJsonValue::String(pdu.event_id().to_string());
    Ok(match rules.events_reference_format {
        EventsReferenceFormatVersion::V1 => {
            let hash = ruma::signatures::reference_hash(pdu.json(), rules)
                .map_err(|e| RoomError::Invalid(e.to_string()))?;
            let hashes = CanonicalJsonObject::from([(
                "sha256".to_owned(),
                CanonicalJsonValue::String(hash),
            )]);
            CanonicalJsonValue::Array(vec![id, CanonicalJsonValue::Object(hashes)])
        }
        _ => id,
    })
}

fn references(pdus: &[&Pdu], rules: &RoomVersionRules) -> Result<CanonicalJsonValue, RoomError> {
    Ok(CanonicalJsonValue::Array(
        pdus.iter()
            .map(|p| reference(p, rules))
            .collect::<Result<_, _>>()?,
    ))
}

/// Build, hash and sign an event. `prev` and `auth` are the events it points at.
pub(crate) fn build(
    frame: &Frame<'_>,
    draft: &EventDraft,
    sender: &UserId,
    prev: &[&Pdu],
    auth: &[&Pdu],
    depth: u64,
    origin_server_ts: MilliSecondsSinceUnixEpoch,
) -> Result<Pdu, RoomError> {
    let rules = frame.rules;
    let server = frame.key.server_name();
    let mut content = match CanonicalJsonValue::try_from(draft.content.clone()) {
        Ok(CanonicalJsonValue::Object(content)) => content,
        Ok(_) => {
            return Err(RoomError::Invalid(
                "event content must be a JSON object".into(),
            ));
        }
        Err(e) => {
            return Err(RoomError::Invalid(format!(
                "event content is not canonical JSON: {e}"
            )));
        }
    };
    let mut object = CanonicalJsonObject::new();
    if let Some(target) = &draft.redacts {
        let target = CanonicalJsonValue::String(target.to_string());
        if rules.redaction.content_field_redacts {
            content.insert("redacts".into(), target);
        } else {
            object.insert("redacts".into(), target);
        }
    }
    let depth = i64::try_from(depth)
        .ok()
        .and_then(|d| ruma::Int::try_from(d).ok())
        .ok_or_else(|| RoomError::Invalid("depth overflow".into()))?;
    object.insert("auth_events".into(), references(auth, rules)?);
    object.insert("prev_events".into(), references(prev, rules)?);
    object.insert("content".into(), CanonicalJsonValue::Object(content));
    object.insert("depth".into(), CanonicalJsonValue::Integer(depth));
    object.insert(
        "origin_server_ts".into(),
        CanonicalJsonValue::Integer(origin_server_ts.get().into()),
    );
    object.insert(
        "sender".into(),
        CanonicalJsonValue::String(sender.to_string()),
    );
    object.insert(
        "type".into(),
        CanonicalJsonValue::String(draft.kind.to_string()),
    );
    if let Some(state_key) = &draft.state_key {
        object.insert(
            "state_key".into(),
            CanonicalJsonValue::String(state_key.clone()),
        );
    }
    if let Some(room_id) = frame.room_id {
        object.insert(
            "room_id".into(),
            CanonicalJsonValue::String(room_id.to_string()),
        );
    }
    // `origin` stopped being part of the PDU format in room version 11.
    if rules.redaction.keep_origin_membership_prev_state {
        object.insert(
            "origin".into(),
            CanonicalJsonValue::String(server.to_string()),
        );
    }
    if rules.event_id_format == EventIdFormatVersion::V1 {
        let id = ruma::EventId::new_v1(server);
        object.insert(
            "event_id".into(),
            CanonicalJsonValue::String(id.to_string()),
        );
    }
    ruma::signatures::hash_and_sign_event(
        server.as_str(),
        frame.key.pair(),
        &mut object,
        &rules.redaction,
    )
    .map_err(|e| match e {
        ruma::signatures::JsonError::PduTooLarge => RoomError::TooLarge {
            size: crate::canonical_string(&object).len(),
            limit: crate::MAX_PDU_BYTES,
        },
        other => RoomError::Invalid(other.to_string()),
    })?;
    Pdu::from_canonical(object, rules)
}
