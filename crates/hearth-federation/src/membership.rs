//! Partners' users joining rooms of ours: `make_join` hands out a template, `send_join`
//! takes the signed join through the room's pipeline and answers with the room's state and
//! auth chain. Each checks that the user is the asking server's.

use std::sync::Arc;

use ruma::{CanonicalJsonObject, EventId, RoomId, RoomVersionId, ServerName, UserId};
use serde_json::value::RawValue;

use hearth_rooms::{JoinedState, Pdu, Received, Remote};

use crate::{Federation, FederationError};

/// The spec's default for `make_join`'s `ver`: a server that names none speaks version 1.
fn supported_by(asker: &[RoomVersionId]) -> Vec<RoomVersionId> {
    if asker.is_empty() {
        vec![RoomVersionId::V1]
    } else {
        asker.to_vec()
    }
}

impl Federation {
    /// `make_join`: the template of `user`'s join to `room`, for `origin` to sign.
    pub async fn make_join(
        &self,
        origin: &ServerName,
        room: &RoomId,
        user: &UserId,
        versions: &[RoomVersionId],
    ) -> Result<(RoomVersionId, CanonicalJsonObject), FederationError> {
        if user.server_name() != origin {
            return Err(FederationError::NotYours(format!(
                "{user} is not a user of {origin}"
            )));
        }
        let head = self.inner.store.room_head(room).await?.ok_or_else(|| {
            FederationError::Room(hearth_rooms::RoomError::UnknownRoom(room.to_owned()))
        })?;
        self.check_acl(room, origin).await?;
        if !supported_by(versions).contains(&head.room_version) {
            return Err(FederationError::IncompatibleVersion(head.room_version));
        }
        self.inner
            .rooms
            .join_template(room, user)
            .await
            .map_err(FederationError::Room)
    }

    /// `send_join`: take `origin`'s signed join of one of its users, and tell it the room.
    pub async fn send_join(
        &self,
        origin: &ServerName,
        room: &RoomId,
        event_id: &EventId,
        raw: &RawValue,
    ) -> Result<(Arc<Pdu>, JoinedState), FederationError> {
        let pdu = self
            .take_membership(origin, room, event_id, raw, "join")
            .await?;
        let state = self
            .inner
            .rooms
            .joined_state(&pdu)
            .await
            .map_err(FederationError::Room)?;
        Ok((pdu, state))
    }

    /// `send_join` / `send_leave`: `origin`'s signed `membership` of one of its users, checked
    /// (a room of ours the ACL lets it into, the sender's own membership under its event id)
    /// and taken through the room's pipeline.
    pub(crate) async fn take_membership(
        &self,
        origin: &ServerName,
        room: &RoomId,
        event_id: &EventId,
        raw: &RawValue,
        membership: &str,
    ) -> Result<Arc<Pdu>, FederationError> {
        let head = self.inner.store.room_head(room).await?.ok_or_else(|| {
            FederationError::Room(hearth_rooms::RoomError::UnknownRoom(room.to_owned()))
        })?;
        self.check_acl(room, origin).await?;
        let rules = head
            .room_version
            .rules()
            .ok_or_else(|| FederationError::IncompatibleVersion(head.room_version.clone()))?;
        let pdu = self
            .check_pdu(raw, &rules)
            .await
            .map_err(|e| FederationError::BadRequest(e.to_string()))?;
        let is_own = *pdu.kind() == ruma::events::TimelineEventType::RoomMember
            && pdu.state_key() == Some(pdu.sender().as_str())
            && pdu.membership().as_deref() == Some(membership);
        if !is_own || pdu.room() != room || pdu.event_id() != event_id {
            return Err(FederationError::BadRequest(format!(
                "send_{membership} takes the {membership} of its sender to this room, under its event id"
            )));
        }
        if pdu.sender().server_name() != origin {
            return Err(FederationError::NotYours(format!(
                "{} is not a user of {origin}",
                pdu.sender()
            )));
        }
        let pdu = Arc::new(pdu);
        let received = self
            .inner
            .rooms
            .receive(Remote {
                pdu: pdu.clone(),
                state_before: None,
            })
            .await
            .map_err(FederationError::Room)?;
        match received {
            Received::Accepted { .. } | Received::Known => Ok(pdu),
            Received::Rejected(why) | Received::SoftFailed(why) => Err(FederationError::Room(
                hearth_rooms::RoomError::Forbidden(format!("the {membership} was refused: {why}")),
            )),
        }
    }
}
