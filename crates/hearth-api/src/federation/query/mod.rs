//! `/_matrix/federation/v1/query/*`: profiles and room aliases of this server.

pub(crate) mod get_profile_information;
pub(crate) mod get_room_information;
