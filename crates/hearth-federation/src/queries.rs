//! Questions for a partner about what it owns: its users' profiles and its room aliases.

use ruma::api::federation::query::{get_profile_information, get_room_information};
use ruma::{OwnedRoomId, OwnedServerName, RoomAliasId, UserId};

use crate::{Federation, FederationError};

/// A remote user's profile fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteProfile {
    pub displayname: Option<String>,
    pub avatar_url: Option<String>,
}

impl Federation {
    /// `user`'s profile, asked of their server.
    pub async fn query_profile(&self, user: &UserId) -> Result<RemoteProfile, FederationError> {
        let response = self
            .client()
            .send(
                user.server_name(),
                get_profile_information::v1::Request::new(user.to_owned()),
            )
            .await?;
        let text = |field: &str| {
            response
                .get(field)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        Ok(RemoteProfile {
            displayname: text("displayname"),
            avatar_url: text("avatar_url"),
        })
    }

    /// The room `alias` names, and servers to join it through, asked of the alias's server.
    pub async fn query_alias(
        &self,
        alias: &RoomAliasId,
    ) -> Result<(OwnedRoomId, Vec<OwnedServerName>), FederationError> {
        let response = self
            .client()
            .send(
                alias.server_name(),
                get_room_information::v1::Request::new(alias.to_owned()),
            )
            .await?;
        Ok((response.room_id, response.servers))
    }
}
