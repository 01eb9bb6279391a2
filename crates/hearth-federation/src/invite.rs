//! Invites across servers (`PUT /_matrix/federation/v2/invite`), both ways.
//!
//! Out: a local user invites a partner's user. The invite is built and authorised on the
//! room's head without being committed (`Rooms::prepare`), sent to the invitee's server with
//! the room's stripped state as full PDUs, and only once it comes back with that server's
//! signature (and nothing else changed) is it taken into the room, through the remote path
//! like any countersigned event; the outbound sender then sends it to the room's servers. A
//! refusal leaves nothing behind.
//!
//! In: a partner invites one of our users to a room of its. The spec's checks come first
//! (the event is signed, an invite, from a user of the asking server, for a user of ours, in
//! a room version we speak; its `invite_room_state` has the create event, every entry an
//! untampered event of the room), then we sign it and keep it, with the stripped state, as
//! the user's membership of a room we are not in (`outside_memberships`), which their sync
//! shows as an invite. Accepting joins through the inviting server.
//! <https://spec.matrix.org/v1.16/server-server-api/#inviting-to-a-room>

use std::sync::Arc;

use ruma::api::federation::membership::{RawStrippedState, create_invite};
use ruma::events::TimelineEventType;
use ruma::room_version_rules::RoomVersionRules;
use ruma::signatures::PublicKeyMap;
use ruma::{
    CanonicalJsonObject, CanonicalJsonValue, EventId, OwnedServerName, RoomId, RoomVersionId,
    ServerName, UserId,
};
use serde_json::value::RawValue;

use hearth_rooms::{Append, Appended, EventDraft, Pdu, Received, Remote, RoomError};
use hearth_store::OutsideMembership;

use crate::{Federation, FederationError};

impl Federation {
    /// Invite `target`, a partner's user, to `room` as `sender`. `content` is the invite's
    /// content besides the membership (a reason, the target's profile).
    pub async fn invite_remote(
        &self,
        sender: &UserId,
        room: &RoomId,
        target: &UserId,
        mut content: serde_json::Map<String, serde_json::Value>,
    ) -> Result<Appended, FederationError> {
        let server = target.server_name();
        self.policy().check(server)?;
        self.check_acl(room, server).await?;
        let head = self
            .inner
            .store
            .room_head(room)
            .await?
            .ok_or_else(|| FederationError::Room(RoomError::UnknownRoom(room.to_owned())))?;
        let version = head.room_version;
        let rules = rules_of(&version)?;
        content.insert("membership".into(), "invite".into());
        let draft = EventDraft::state(
            "m.room.member",
            target.as_str(),
            serde_json::Value::Object(content),
        );
        let invite = self
            .inner
            .rooms
            .prepare(
                room,
                Append {
                    sender: sender.to_owned(),
                    draft,
                    txn: None,
                },
            )
            .await
            .map_err(FederationError::Room)?;
        let stripped = self.invite_room_state(room).await?;
        let event = raw_of(invite.json())?;
        let request = create_invite::v2::Request::new(
            room.to_owned(),
            invite.owned_event_id().clone(),
            version.clone(),
            event,
            stripped,
        );
        let answer = self.client().send(server, request).await?;
        let signed = self
            .countersigned(&invite, &answer.event, server, &rules)
            .await?;
        let received = self
            .inner
            .rooms
            .receive(Remote {
                pdu: Arc::new(signed),
                state_before: None,
            })
            .await
            .map_err(FederationError::Room)?;
        match received {
            Received::Accepted { stream } => Ok(Appended {
                event_id: invite.owned_event_id().clone(),
                stream,
                duplicate: false,
            }),
            Received::Known => Err(FederationError::BadRequest("the invite is known".into())),
            Received::Rejected(why) | Received::SoftFailed(why) => Err(FederationError::Room(
                RoomError::Forbidden(format!("the invite was refused: {why}")),
            )),
        }
    }

    /// The room's stripped state as full PDUs (as sent: redacted where redacted here), for
    /// `invite_room_state`.
    async fn invite_room_state(
        &self,
        room: &RoomId,
    ) -> Result<Vec<RawStrippedState>, FederationError> {
        let rooms = &self.inner.rooms;
        let state = rooms
            .current_state(room)
            .await
            .map_err(FederationError::Room)?;
        let ids: Vec<_> = state
            .iter()
            .filter(|((kind, key), _)| {
                key.is_empty()
                    && hearth_rooms::STRIPPED_STATE_TYPES.contains(&kind.to_string().as_str())
            })
            .map(|(_, id)| id.clone())
            .collect();
        let pdus = rooms.load_pdus(&ids).await.map_err(FederationError::Room)?;
        let pdus: Vec<Arc<Pdu>> = ids.iter().filter_map(|id| pdus.get(id).cloned()).collect();
        Ok(self
            .as_sent(&pdus)
            .await?
            .into_iter()
            .map(RawStrippedState::Pdu)
            .collect())
    }

    /// Our invite as the invitee's server sent it back: the same event, with a valid signature
    /// of that server added.
    async fn countersigned(
        &self,
        ours: &Pdu,
        theirs: &RawValue,
        server: &ServerName,
        rules: &RoomVersionRules,
    ) -> Result<Pdu, FederationError> {
        let bad = |why: String| FederationError::BadResponse {
            server: server.to_owned(),
            why,
        };
        let mut returned: CanonicalJsonObject = serde_json::from_str(theirs.get())
            .map_err(|e| bad(format!("the signed invite is not canonical JSON: {e}")))?;
        let Some(CanonicalJsonValue::Object(signatures)) = returned.remove("signatures") else {
            return Err(bad("the signed invite has no signatures".into()));
        };
        returned.remove("unsigned");
        let mut sent = ours.json().clone();
        let Some(CanonicalJsonValue::Object(mut all)) = sent.remove("signatures") else {
            return Err(bad("our invite has no signatures".into()));
        };
        sent.remove("unsigned");
        if returned != sent {
            return Err(bad("the invite came back changed".into()));
        }
        let Some(CanonicalJsonValue::Object(by_key)) = signatures.get(server.as_str()) else {
            return Err(bad("the invitee's server did not sign the invite".into()));
        };
        // Their signature, checked over the redacted event as every event signature is.
        let at = if rules.enforce_key_validity {
            i64::from(ours.origin_server_ts().get())
        } else {
            0
        };
        let mut keys = ruma::signatures::PublicKeySet::new();
        for key_id in by_key.keys() {
            if let Ok(key) = self.server_key(server, key_id, at).await {
                keys.insert(key_id.clone(), key);
            }
        }
        let mut redacted = ruma::canonical_json::redact(sent.clone(), &rules.redaction, None)
            .map_err(|e| bad(format!("redacting the invite: {e}")))?;
        redacted.insert(
            "signatures".into(),
            CanonicalJsonValue::Object(CanonicalJsonObject::from([(
                server.to_string(),
                CanonicalJsonValue::Object(by_key.clone()),
            )])),
        );
        let map = PublicKeyMap::from([(server.to_string(), keys)]);
        ruma::signatures::verify_json(&map, &redacted)
            .map_err(|e| bad(format!("the invitee's server's signature: {e}")))?;
        all.insert(
            server.to_string(),
            CanonicalJsonValue::Object(by_key.clone()),
        );
        sent.insert("signatures".into(), CanonicalJsonValue::Object(all));
        if let Some(unsigned) = ours.json().get("unsigned") {
            sent.insert("unsigned".into(), unsigned.clone());
        }
        Pdu::from_canonical(sent, rules).map_err(|e| bad(e.to_string()))
    }

    /// `PUT /v2/invite` from `origin`: check the invite, sign it, and keep it for our user.
    /// Returns the event with our signature added.
    pub async fn receive_invite(
        &self,
        origin: &ServerName,
        room: &RoomId,
        event_id: &EventId,
        version: &RoomVersionId,
        raw: &RawValue,
        invite_room_state: &[RawStrippedState],
    ) -> Result<Box<RawValue>, FederationError> {
        let rules = rules_of(version)?;
        let invalid = |why: String| FederationError::BadRequest(why);
        let pdu = self
            .check_pdu(raw, &rules)
            .await
            .map_err(|e| invalid(format!("the invite: {e}")))?;
        if *pdu.kind() != TimelineEventType::RoomMember
            || pdu.membership().as_deref() != Some("invite")
        {
            return Err(invalid("the event is not an invite".into()));
        }
        if pdu.sender().server_name() != origin {
            return Err(invalid(format!(
                "{} is not a user of {origin}",
                pdu.sender()
            )));
        }
        if pdu.room() != room || pdu.event_id() != event_id {
            return Err(invalid("the invite is not the event the path names".into()));
        }
        let own = self.policy().own_name();
        let invitee = pdu
            .state_key()
            .and_then(|k| ruma::OwnedUserId::try_from(k).ok())
            .filter(|u| u.server_name() == own)
            .ok_or_else(|| invalid("the invitee is not a user of this server".into()))?;
        if self.inner.store.user(&invitee).await?.is_none() {
            return Err(FederationError::Room(RoomError::Forbidden(format!(
                "{invitee} does not exist"
            ))));
        }
        let stripped = self
            .check_invite_room_state(room, &rules, invite_room_state)
            .await?;

        let mut signed = pdu.json().clone();
        ruma::signatures::sign_event(
            own.as_str(),
            self.inner.key.pair(),
            &mut signed,
            &rules.redaction,
        )
        .map_err(|e| invalid(format!("signing the invite: {e}")))?;
        let mut shown = stripped;
        shown.push(pdu.to_stripped());
        self.inner
            .store
            .persist_outside(OutsideMembership {
                room_id: room.to_owned(),
                user_id: invitee.clone(),
                membership: "invite".into(),
                event_id: pdu.owned_event_id().clone(),
                room_version: version.clone(),
                event_json: hearth_rooms::canonical_string(&signed),
                stripped_state: serde_json::Value::Array(shown).to_string(),
            })
            .await?;
        tracing::info!(%room, %invitee, %origin, "invited over federation");
        raw_of(&signed)
    }

    /// The stripped state for the invitee's client, from `invite_room_state` checked as the
    /// spec asks (from room version 12 it must; before, we do as far as the entries are PDUs):
    /// the create event present, every PDU an untampered event of this room.
    async fn check_invite_room_state(
        &self,
        room: &RoomId,
        rules: &RoomVersionRules,
        entries: &[RawStrippedState],
    ) -> Result<Vec<serde_json::Value>, FederationError> {
        let strict = rules.authorization.room_create_event_id_as_room_id;
        let invalid = |why: String| FederationError::BadRequest(why);
        let mut out = Vec::with_capacity(entries.len());
        let mut has_create = false;
        for entry in entries {
            #[allow(deprecated)]
            let stripped = match entry {
                RawStrippedState::Pdu(raw) => {
                    let pdu = self
                        .check_pdu(raw, rules)
                        .await
                        .map_err(|e| invalid(format!("invite_room_state: {e}")))?;
                    if pdu.room() != room {
                        return Err(invalid(format!(
                            "invite_room_state: {} is of another room",
                            pdu.event_id()
                        )));
                    }
                    pdu.to_stripped()
                }
                RawStrippedState::Stripped(raw) if !strict => {
                    serde_json::from_str(raw.json().get())
                        .map_err(|e| invalid(format!("invite_room_state: {e}")))?
                }
                _ => {
                    return Err(invalid(
                        "invite_room_state must hold full events in this room version".into(),
                    ));
                }
            };
            has_create |= stripped["type"] == "m.room.create";
            out.push(stripped);
        }
        if strict && !has_create {
            return Err(invalid(
                "invite_room_state lacks the room's create event".into(),
            ));
        }
        Ok(out)
    }

    /// The server an outside invite came from, if `user` has one to `room`: where to accept
    /// it (join) or reject it (leave) through.
    pub async fn inviting_server(
        &self,
        room: &RoomId,
        user: &UserId,
    ) -> Result<Option<OwnedServerName>, FederationError> {
        let Some((outside, _)) = self.inner.store.outside_membership(room, user).await? else {
            return Ok(None);
        };
        if outside.membership != "invite" {
            return Ok(None);
        }
        let rules = rules_of(&outside.room_version)?;
        let pdu = Pdu::from_json_str(&outside.event_json, &rules).map_err(FederationError::Room)?;
        Ok(Some(pdu.sender().server_name().to_owned()))
    }
}

impl Federation {
    /// A PDU for a room we are not in that takes back one of our users' invites: the inviting
    /// server's user kicking (or banning) the invitee before they joined. It becomes the
    /// user's membership of the room; anything else about such a room is none of ours.
    pub(crate) async fn revoked_invite(
        &self,
        origin: &ServerName,
        room: &RoomId,
        raw: &RawValue,
    ) -> Option<(ruma::OwnedEventId, Result<(), String>)> {
        #[derive(serde::Deserialize)]
        struct Target {
            state_key: Option<ruma::OwnedUserId>,
        }
        let target = serde_json::from_str::<Target>(raw.get()).ok()?.state_key?;
        let (outside, _) = self
            .inner
            .store
            .outside_membership(room, &target)
            .await
            .ok()??;
        if outside.membership != "invite"
            || self.inviting_server(room, &target).await.ok()?.as_deref() != Some(origin)
        {
            return None;
        }
        let rules = outside.room_version.rules()?;
        let pdu = match self.check_pdu(raw, &rules).await {
            Ok(pdu) => pdu,
            Err(e) => {
                let id = serde_json::from_str::<serde_json::Value>(raw.get())
                    .ok()
                    .and_then(|v| v["event_id"].as_str().and_then(|s| s.try_into().ok()))?;
                return Some((id, Err(e.to_string())));
            }
        };
        let revokes = *pdu.kind() == TimelineEventType::RoomMember
            && matches!(pdu.membership().as_deref(), Some("leave" | "ban"))
            && pdu.sender().server_name() == origin
            && pdu.room() == room;
        if !revokes {
            return None;
        }
        let id = pdu.owned_event_id().clone();
        let kept = self
            .inner
            .store
            .persist_outside(OutsideMembership {
                room_id: room.to_owned(),
                user_id: target.clone(),
                membership: pdu.membership().unwrap_or_else(|| "leave".into()),
                event_id: id.clone(),
                room_version: outside.room_version,
                event_json: pdu.canonical_json(),
                stripped_state: "[]".into(),
            })
            .await
            .map_err(|e| e.to_string());
        tracing::info!(%room, user = %target, %origin, "an invite was taken back");
        Some((id, kept.map(|_| ())))
    }
}

fn rules_of(version: &RoomVersionId) -> Result<RoomVersionRules, FederationError> {
    version
        .rules()
        .ok_or_else(|| FederationError::IncompatibleVersion(version.clone()))
}

fn raw_of(object: &CanonicalJsonObject) -> Result<Box<RawValue>, FederationError> {
    serde_json::value::to_raw_value(object).map_err(|e| FederationError::BadRequest(e.to_string()))
}
