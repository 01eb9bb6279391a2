//! Leaving a room without being in it (`make_leave` / `send_leave`): how a user rejects an
//! invite to a room on other servers. On the resident side a partner's user gets the leave
//! template and sends the signed leave, which goes through the room's pipeline; on ours, a
//! local user rejecting a partner's invite asks the inviting server, and the leave becomes
//! their membership of the room we are still not in.
//! <https://spec.matrix.org/v1.16/server-server-api/#leaving-rooms-rejecting-invites>

use ruma::api::federation::membership::{create_leave_event, prepare_leave_event};
use ruma::{CanonicalJsonObject, EventId, RoomId, RoomVersionId, ServerName, UserId};
use serde_json::value::RawValue;

use hearth_rooms::RoomError;
use hearth_store::OutsideMembership;

use crate::{Federation, FederationError};

impl Federation {
    /// `make_leave`: the template of `user`'s leave of `room`, for `origin` to sign.
    pub async fn make_leave(
        &self,
        origin: &ServerName,
        room: &RoomId,
        user: &UserId,
    ) -> Result<(RoomVersionId, CanonicalJsonObject), FederationError> {
        if user.server_name() != origin {
            return Err(FederationError::NotYours(format!(
                "{user} is not a user of {origin}"
            )));
        }
        self.check_acl(room, origin).await?;
        self.inner
            .rooms
            .leave_template(room, user)
            .await
            .map_err(FederationError::Room)
    }

    /// `send_leave`: take `origin`'s signed leave of one of its users into the room.
    pub async fn send_leave(
        &self,
        origin: &ServerName,
        room: &RoomId,
        event_id: &EventId,
        raw: &RawValue,
    ) -> Result<(), FederationError> {
        self.take_membership(origin, room, event_id, raw, "leave")
            .await
            .map(|_| ())
    }

    /// Reject `user`'s invite to `room` (a room we are not in) through the server that sent
    /// it. `reason` goes into the leave's content.
    pub async fn reject_invite(
        &self,
        user: &UserId,
        room: &RoomId,
        reason: Option<&str>,
    ) -> Result<i64, FederationError> {
        let server = self.inviting_server(room, user).await?.ok_or_else(|| {
            FederationError::Room(RoomError::Forbidden(format!(
                "{user} has no invite to {room} to reject"
            )))
        })?;
        self.policy().check(&server)?;
        let made = self
            .client()
            .send(
                &server,
                prepare_leave_event::v1::Request::new(room.to_owned(), user.to_owned()),
            )
            .await?;
        let version = made.room_version.unwrap_or(RoomVersionId::V1);
        let rules = version
            .rules()
            .ok_or_else(|| FederationError::IncompatibleVersion(version.clone()))?;
        let mut content = serde_json::Map::new();
        if let Some(reason) = reason {
            content.insert("reason".into(), reason.into());
        }
        let (template, leave) =
            self.sign_member_template(&server, &made.event, user, room, "leave", &content, &rules)?;
        let raw = serde_json::value::to_raw_value(&template)
            .map_err(|e| FederationError::BadRequest(e.to_string()))?;
        self.client()
            .send(
                &server,
                create_leave_event::v2::Request::new(
                    room.to_owned(),
                    leave.owned_event_id().clone(),
                    raw,
                ),
            )
            .await?;
        let stream = self
            .inner
            .store
            .persist_outside(OutsideMembership {
                room_id: room.to_owned(),
                user_id: user.to_owned(),
                membership: "leave".into(),
                event_id: leave.owned_event_id().clone(),
                room_version: version,
                event_json: leave.canonical_json(),
                stripped_state: "[]".into(),
            })
            .await?;
        tracing::info!(%room, %user, %server, "rejected an invite over federation");
        Ok(stream)
    }
}
