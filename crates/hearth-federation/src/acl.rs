//! Server ACLs (`m.room.server_acl`): a room may refuse servers. A refused server's PDUs and
//! EDUs for the room are dropped, and its room-scoped requests (joins, reads) answered 403.
//! <https://spec.matrix.org/v1.16/server-server-api/#server-access-control-lists-acls>

use ruma::events::room::server_acl::RoomServerAclEventContent;
use ruma::{RoomId, ServerName};

use crate::{Federation, FederationError};

impl Federation {
    /// Whether the room's current ACL (if it has one) lets `server` in.
    pub async fn acl_allows(
        &self,
        room: &RoomId,
        server: &ServerName,
    ) -> Result<bool, FederationError> {
        // One state key, not the room's whole state: this runs for every inbound PDU.
        let acl = self
            .inner
            .store
            .current_state_of_types(&[room.to_owned()], &["m.room.server_acl"])
            .await?;
        let Some((_, _, id)) = acl.into_iter().next() else {
            return Ok(true);
        };
        let Some(pdu) = self
            .inner
            .rooms
            .pdu(&id)
            .await
            .map_err(FederationError::Room)?
        else {
            return Ok(true);
        };
        // An ACL whose content does not parse bans nobody (it could not be applied anyway).
        Ok(
            match serde_json::from_str::<RoomServerAclEventContent>(pdu.content().get()) {
                Ok(acl) => acl.is_allowed(server),
                Err(_) => true,
            },
        )
    }

    /// [`Federation::acl_allows`], as the error room-scoped endpoints return.
    pub async fn check_acl(
        &self,
        room: &RoomId,
        server: &ServerName,
    ) -> Result<(), FederationError> {
        if self.acl_allows(room, server).await? {
            Ok(())
        } else {
            Err(FederationError::NotYours(format!(
                "{server} is banned from {room} by its server ACL"
            )))
        }
    }
}
