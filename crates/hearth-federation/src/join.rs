//! A local user joining a room that lives on partner servers: `make_join` from a partner
//! (only partners: a join through any other server is refused before anything is sent),
//! our signature on the template, `send_join`, and the answer checked — every event of the
//! state and auth chain signed by partners and untampered (a room with events from servers
//! that are not partners cannot be joined) — before the room is made a room here.
//! <https://spec.matrix.org/v1.16/server-server-api/#joining-rooms>

use std::sync::Arc;

use ruma::api::federation::membership::{create_join_event, prepare_join_event};
use ruma::room_version_rules::EventIdFormatVersion;
use ruma::{
    CanonicalJsonObject, CanonicalJsonValue, OwnedServerName, RoomId, RoomVersionId, UserId,
};

use hearth_rooms::{Appended, Pdu, RemoteJoin};

use crate::{Federation, FederationError};

impl Federation {
    /// Join `user` (ours) to `room` through the first of `via` that lets them in. `content`
    /// is what the join's content carries besides the membership (the user's profile).
    pub async fn join_remote(
        &self,
        user: &UserId,
        room: &RoomId,
        via: &[OwnedServerName],
        content: serde_json::Map<String, serde_json::Value>,
    ) -> Result<Appended, FederationError> {
        let mut candidates: Vec<OwnedServerName> = via.to_vec();
        if let Some(server) = room.server_name() {
            candidates.push(server.to_owned());
        }
        candidates.dedup();
        candidates.retain(|s| s != self.policy().own_name());
        let (allowed, refused): (Vec<_>, Vec<_>) = candidates
            .into_iter()
            .partition(|s| self.policy().allows(s));
        if allowed.is_empty() {
            return Err(match refused.into_iter().next() {
                Some(server) => FederationError::NotAllowed(server),
                None => FederationError::BadRequest(format!(
                    "no server to join {room} through: name one with `via` or `server_name`"
                )),
            });
        }
        let mut last = None;
        for server in &allowed {
            match self.join_through(server, user, room, &content).await {
                Ok(appended) => return Ok(appended),
                Err(e) => {
                    tracing::info!(%room, %server, error = %e, "remote join failed");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| FederationError::BadRequest("no server to join through".into())))
    }

    async fn join_through(
        &self,
        server: &OwnedServerName,
        user: &UserId,
        room: &RoomId,
        content: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Appended, FederationError> {
        let mut request = prepare_join_event::v1::Request::new(room.to_owned(), user.to_owned());
        request.ver = hearth_rooms::ROOM_VERSIONS.to_vec();
        let made = self.client().send(server, request).await?;
        let version = made.room_version.unwrap_or(RoomVersionId::V1);
        let rules = version
            .rules()
            .ok_or_else(|| FederationError::IncompatibleVersion(version.clone()))?;
        let (template, join) =
            self.sign_member_template(server, &made.event, user, room, "join", content, &rules)?;
        let raw = serde_json::value::to_raw_value(&template)
            .map_err(|e| FederationError::BadRequest(e.to_string()))?;
        let sent = self
            .client()
            .send(
                server,
                create_join_event::v2::Request::new(
                    room.to_owned(),
                    join.owned_event_id().clone(),
                    raw,
                ),
            )
            .await?;
        let room_state = sent.room_state;
        let check = |list: &[Box<serde_json::value::RawValue>]| {
            let list = list.to_vec();
            let rules = rules.clone();
            async move {
                let mut out = Vec::with_capacity(list.len());
                for raw in &list {
                    out.push(Arc::new(self.check_pdu(raw, &rules).await.map_err(
                        |e| FederationError::BadResponse {
                            server: server.clone(),
                            why: format!("an event of the room's state: {e}"),
                        },
                    )?));
                }
                Ok::<_, FederationError>(out)
            }
        };
        let state = check(&room_state.state).await?;
        let auth_chain = check(&room_state.auth_chain).await?;
        let appended = self
            .inner
            .rooms
            .join_remote_room(RemoteJoin {
                version,
                join: Arc::new(join),
                state,
                auth_chain,
            })
            .await
            .map_err(FederationError::Room)?;
        tracing::info!(%room, %server, %user, "joined over federation");
        Ok(appended)
    }

    /// A `make_join` / `make_leave` template from `server`, checked to be `user`'s membership
    /// of `room`, with our content, timestamp and origin filled in, hashed and signed by us.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn sign_member_template(
        &self,
        server: &OwnedServerName,
        made: &serde_json::value::RawValue,
        user: &UserId,
        room: &RoomId,
        membership: &str,
        content: &serde_json::Map<String, serde_json::Value>,
        rules: &ruma::room_version_rules::RoomVersionRules,
    ) -> Result<(CanonicalJsonObject, Pdu), FederationError> {
        let bad = |why: String| FederationError::BadResponse {
            server: server.clone(),
            why,
        };
        let mut template: CanonicalJsonObject = serde_json::from_str(made.get())
            .map_err(|e| bad(format!("make_{membership} template: {e}")))?;
        let field = |object: &CanonicalJsonObject, name: &str| match object.get(name) {
            Some(CanonicalJsonValue::String(s)) => Some(s.clone()),
            _ => None,
        };
        if field(&template, "sender").as_deref() != Some(user.as_str())
            || field(&template, "state_key").as_deref() != Some(user.as_str())
            || field(&template, "type").as_deref() != Some("m.room.member")
            || field(&template, "room_id").as_deref() != Some(room.as_str())
        {
            return Err(bad(format!(
                "the make_{membership} template is not our user's {membership} of the room"
            )));
        }
        let mut member_content = content.clone();
        member_content.insert("membership".into(), membership.into());
        template.insert(
            "content".into(),
            CanonicalJsonValue::try_from(serde_json::Value::Object(member_content))
                .map_err(|e| FederationError::BadRequest(e.to_string()))?,
        );
        template.insert(
            "origin_server_ts".into(),
            CanonicalJsonValue::Integer(ruma::MilliSecondsSinceUnixEpoch::now().get().into()),
        );
        let own = self.policy().own_name();
        if rules.redaction.keep_origin_membership_prev_state {
            template.insert("origin".into(), CanonicalJsonValue::String(own.to_string()));
        }
        if rules.event_id_format == EventIdFormatVersion::V1 {
            template.insert(
                "event_id".into(),
                CanonicalJsonValue::String(ruma::EventId::new_v1(own).to_string()),
            );
        }
        template.remove("signatures");
        template.remove("hashes");
        ruma::signatures::hash_and_sign_event(
            own.as_str(),
            self.inner.key.pair(),
            &mut template,
            &rules.redaction,
        )
        .map_err(|e| FederationError::BadRequest(format!("signing our {membership}: {e}")))?;
        let pdu = Pdu::from_canonical(template.clone(), rules)
            .map_err(|e| bad(format!("our {membership} from the template: {e}")))?;
        Ok((template, pdu))
    }
}
