//! HTTP routers for the Matrix APIs. Handlers live one endpoint per file, named after their ruma
//! endpoint; paths come from ruma's metadata; every error leaves through [`ApiError`].

mod client;
mod error;
mod extract;
mod key;
mod ruma_glue;
mod uiaa;

use std::sync::Arc;

use axum::Router;
use hearth_accounts::Accounts;
use hearth_keys::SigningKey;
use hearth_rooms::Rooms;
use ruma::OwnedServerName;

pub use error::ApiError;
pub use extract::{Caller, MAX_BODY_BYTES};

/// What the handlers read. Built by the binary from the services it started.
#[derive(Clone, Debug)]
pub struct ApiState {
    pub server_name: OwnedServerName,
    pub key: Arc<SigningKey>,
    pub accounts: Accounts,
    pub rooms: Rooms,
    /// `[registration] enabled`: open self-service registration.
    pub registration_enabled: bool,
}

impl ApiState {
    /// Resolve an access token to its caller.
    pub(crate) async fn authenticate(&self, token: &str) -> Result<Caller, ApiError> {
        let who = self.accounts.authenticate(token).await?;
        Ok(Caller {
            user_id: who.user_id,
            device_id: who.device_id,
            is_admin: who.is_admin,
            access_token: token.to_owned(),
        })
    }
}

/// Each endpoint file adds its routes with one of these.
type AddRoute = fn(Router<ApiState>) -> Router<ApiState>;

/// The client-facing router: the client-server API and the server key endpoint.
pub fn router(state: ApiState) -> Router {
    use client::{account, discovery, membership, message, room, session, state as room_state};
    let routes: &[AddRoute] = &[
        discovery::get_supported_versions::route,
        account::register::route,
        account::get_username_availability::route,
        account::whoami::route,
        session::get_login_types::route,
        session::login::route,
        session::logout::route,
        session::logout_all::route,
        room::create_room::route,
        room::get_room_event::route,
        message::send_message_event::route,
        room_state::send_state_event::route,
        room_state::get_state_events::route,
        room_state::get_state_event_for_key::route,
        membership::join_room_by_id::route,
        membership::invite_user::route,
        membership::leave_room::route,
        key::get_server_keys::route,
    ];
    let router = routes
        .iter()
        .fold(Router::new(), |router, route| route(router));
    router
        .fallback(error::unrecognized)
        .method_not_allowed_fallback(error::method_not_allowed)
        .with_state(state)
}
