//! Joins of other servers' users to rooms of ours, on the resident side: the template a
//! joining server fills in and signs (`make_join`, and `make_leave` for a leave), and the
//! room's state and auth chain it gets back with its accepted join (`send_join`).
//! <https://spec.matrix.org/v1.16/server-server-api/#joining-rooms>
//!
//! Not yet: restricted rooms (the resident server vouching with
//! `join_authorised_via_users_server`), partial state (`omit_members`).

use std::sync::Arc;

use ruma::events::TimelineEventType;
use ruma::room_version_rules::{EventIdFormatVersion, EventsReferenceFormatVersion};
use ruma::{
    CanonicalJsonObject, CanonicalJsonValue, MilliSecondsSinceUnixEpoch, OwnedEventId, RoomId,
    RoomVersionId, UserId,
};
use serde_json::json;

use crate::pipeline::{Head, MAX_PREV_EVENTS};
use crate::{Pdu, RoomError, Rooms, auth};

/// What `send_join` answers besides the join itself.
#[derive(Debug)]
pub struct JoinedState {
    /// The room's state before the join.
    pub state: Vec<Arc<Pdu>>,
    /// Every event the state and the join need to be authorised.
    pub auth_chain: Vec<Arc<Pdu>>,
}

impl Rooms {
    /// The unsigned join event `user` (of another server) would send to `room_id` now: its
    /// room version and the template. Refused if the room's current state would not let the
    /// user join.
    pub async fn join_template(
        &self,
        room_id: &RoomId,
        user: &UserId,
    ) -> Result<(RoomVersionId, CanonicalJsonObject), RoomError> {
        self.member_template(room_id, user, "join").await
    }

    /// The unsigned leave event `user` (of another server) would send to `room_id` now
    /// (`make_leave`: rejecting an invite, leaving without being in the room's servers).
    pub async fn leave_template(
        &self,
        room_id: &RoomId,
        user: &UserId,
    ) -> Result<(RoomVersionId, CanonicalJsonObject), RoomError> {
        self.member_template(room_id, user, "leave").await
    }

    async fn member_template(
        &self,
        room_id: &RoomId,
        user: &UserId,
        membership: &str,
    ) -> Result<(RoomVersionId, CanonicalJsonObject), RoomError> {
        let head = Head::load(self, &room_id.to_owned()).await?;
        let rules = &head.rules;
        if membership == "join"
            && rules.authorization.restricted_join_rule
            && let Some(join_rules) = head
                .state
                .get(&(ruma::events::StateEventType::RoomJoinRules, String::new()))
            && join_rules
                .content_json()
                .get("join_rule")
                .and_then(|r| r.as_str())
                .is_some_and(|r| r == "restricted" || r == "knock_restricted")
        {
            // NOTSPEC: restricted joins need this server to vouch for the user; not built yet.
            return Err(RoomError::Forbidden(
                "joining a restricted room from another server is not supported yet".into(),
            ));
        }
        let content = json!({ "membership": membership });
        let content_raw = serde_json::value::to_raw_value(&content)
            .map_err(|e| RoomError::Invalid(e.to_string()))?;
        let auth_events = auth::select_auth_events(
            &head.state,
            &TimelineEventType::RoomMember,
            user,
            Some(user.as_str()),
            &content_raw,
            &rules.authorization,
        )?;
        let mut prev: Vec<&Arc<Pdu>> = head.extremities.iter().collect();
        prev.sort_by_key(|p| std::cmp::Reverse(p.depth()));
        prev.truncate(MAX_PREV_EVENTS);
        let depth = prev
            .iter()
            .map(|p| p.depth())
            .max()
            .unwrap_or(0)
            .saturating_add(1)
            // A partner's event may be as deep as canonical JSON allows: never deeper.
            .min(crate::pdu::MAX_DEPTH);
        let reference = |pdu: &Pdu| -> Result<CanonicalJsonValue, RoomError> {
            let id = CanonicalJsonValue::String(pdu.event_id().to_string());
            Ok(match rules.events_reference_format {
                EventsReferenceFormatVersion::V1 => {
                    let hash = ruma::signatures::reference_hash(pdu.json(), rules)
                        .map_err(|e| RoomError::Invalid(e.to_string()))?;
                    CanonicalJsonValue::Array(vec![
                        id,
                        CanonicalJsonValue::Object(CanonicalJsonObject::from([(
                            "sha256".to_owned(),
                            CanonicalJsonValue::String(hash),
                        )])),
                    ])
                }
                _ => id,
            })
        };
        let mut template = CanonicalJsonObject::from([
            (
                "room_id".to_owned(),
                CanonicalJsonValue::String(room_id.to_string()),
            ),
            (
                "sender".to_owned(),
                CanonicalJsonValue::String(user.to_string()),
            ),
            (
                "state_key".to_owned(),
                CanonicalJsonValue::String(user.to_string()),
            ),
            (
                "type".to_owned(),
                CanonicalJsonValue::String("m.room.member".to_owned()),
            ),
            (
                "content".to_owned(),
                CanonicalJsonValue::try_from(content)
                    .map_err(|e| RoomError::Invalid(e.to_string()))?,
            ),
            (
                "prev_events".to_owned(),
                CanonicalJsonValue::Array(
                    prev.iter()
                        .map(|p| reference(p))
                        .collect::<Result<_, _>>()?,
                ),
            ),
            (
                "auth_events".to_owned(),
                CanonicalJsonValue::Array(
                    auth_events
                        .iter()
                        .map(|p| reference(p))
                        .collect::<Result<_, _>>()?,
                ),
            ),
            (
                "depth".to_owned(),
                CanonicalJsonValue::Integer(
                    ruma::Int::try_from(i64::try_from(depth).unwrap_or(i64::MAX))
                        .unwrap_or(ruma::Int::MAX),
                ),
            ),
            (
                "origin_server_ts".to_owned(),
                CanonicalJsonValue::Integer(MilliSecondsSinceUnixEpoch::now().get().into()),
            ),
        ]);
        if rules.redaction.keep_origin_membership_prev_state {
            template.insert(
                "origin".to_owned(),
                CanonicalJsonValue::String(user.server_name().to_string()),
            );
        }
        // Would the change be allowed as things stand? (The other server signs it next; the
        // real check comes with `send_join` / `send_leave`.)
        let mut probe = template.clone();
        if rules.event_id_format == EventIdFormatVersion::V1 {
            probe.insert(
                "event_id".to_owned(),
                CanonicalJsonValue::String(format!("$probe:{}", user.server_name())),
            );
        }
        let pdu = Pdu::from_canonical(probe, rules)?;
        auth::check_against(&rules.authorization, &pdu, &auth_events, &head.state)?;
        Ok((head.version.clone(), template))
    }

    /// The state before an accepted join and the auth chain of that state and the join.
    pub async fn joined_state(&self, join: &Pdu) -> Result<JoinedState, RoomError> {
        let state_ids = self.state_before(join.event_id()).await?;
        let state_list: Vec<OwnedEventId> = state_ids.values().cloned().collect();
        let mut roots = state_list.clone();
        roots.extend(join.auth_event_ids().iter().cloned());
        let chain = self.store().auth_chain(&roots).await?;
        let mut wanted = state_list.clone();
        wanted.extend(chain.iter().cloned());
        let events = self.load_pdus(&wanted).await?;
        let get = |id: &OwnedEventId| {
            events
                .get(id)
                .cloned()
                .ok_or_else(|| RoomError::MissingEvent(id.clone()))
        };
        Ok(JoinedState {
            state: state_list.iter().map(get).collect::<Result<_, _>>()?,
            auth_chain: chain.iter().map(get).collect::<Result<_, _>>()?,
        })
    }
}
