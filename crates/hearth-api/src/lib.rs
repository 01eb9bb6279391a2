//! HTTP routers for the Matrix APIs. Handlers live one endpoint per file, named after their ruma
//! endpoint; paths come from ruma's metadata; every error leaves through [`ApiError`].

mod access_log;
mod client;
mod cors;
mod error;
mod extract;
mod federation;
mod federation_discovery;
pub mod fuzzing;
mod guest;
mod json_limits;
mod key;
mod rate_limit;
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
pub use rate_limit::RateLimits;
pub use uiaa::UiaSessions;

/// What the handlers read. Built by the binary from the services it started.
#[derive(Clone, Debug)]
pub struct ApiState {
    pub server_name: OwnedServerName,
    pub key: Arc<SigningKey>,
    pub accounts: Accounts,
    pub rooms: Rooms,
    /// `[registration] enabled`: open self-service registration.
    pub registration_enabled: bool,
    /// `[registration] token_required`: registering needs a registration token.
    pub registration_token_required: bool,
    /// `[registration] guests`: guest accounts may be created.
    pub guests_enabled: bool,
    /// `[rate_limits]`.
    pub rate_limits: RateLimits,
    /// User-interactive authentication sessions in progress.
    pub uia: UiaSessions,
    pub sync: hearth_sync::Syncer,
    /// End-to-end encryption: keys, to-device messages, key backup.
    pub e2ee: hearth_e2ee::E2ee,
    /// Who this server federates with, other servers' keys, requests to them.
    pub federation: hearth_federation::Federation,
    /// `[rooms] default_version`: what createRoom uses when the client names no version.
    pub default_room_version: ruma::RoomVersionId,
    /// `[well_known] client_base_url`: `/.well-known/matrix/client` (404 when unset).
    pub well_known_client: Option<String>,
    /// `[well_known] server`: `/.well-known/matrix/server` (404 when unset).
    pub well_known_server: Option<OwnedServerName>,
    /// `[well_known]` support page and contacts: `/.well-known/matrix/support`.
    pub well_known_support: SupportInfo,
}

/// What `/.well-known/matrix/support` tells (404 when none of it is set).
#[derive(Clone, Debug, Default)]
pub struct SupportInfo {
    pub page: Option<String>,
    /// Matrix user ids (`@...`) or email addresses.
    pub admins: Vec<String>,
    pub security: Vec<String>,
}

impl ApiState {
    /// Resolve an access token to its caller.
    pub(crate) async fn authenticate(&self, token: &str) -> Result<Caller, ApiError> {
        let who = self.accounts.authenticate(token).await?;
        Ok(Caller {
            user_id: who.user_id,
            device_id: who.device_id,
            is_admin: who.is_admin,
            is_guest: who.is_guest,
            access_token: token.to_owned(),
        })
    }
}

/// Each endpoint file adds its routes with one of these.
type AddRoute = fn(Router<ApiState>) -> Router<ApiState>;

/// The server-server endpoints and the key endpoints: all the federation listener serves.
const FEDERATION_ROUTES: &[AddRoute] = &[
    federation::get_server_version::route,
    key::get_server_keys::route,
    key::get_remote_server_keys::route,
    key::get_remote_server_keys_batch::route,
    federation::get_openid_userinfo::route,
    federation::query::get_profile_information::route,
    federation::query::get_room_information::route,
    federation::device::get_devices::route,
    federation::keys::get_keys::route,
    federation::keys::claim_keys::route,
    federation::transactions::send_transaction_message::route,
    federation::membership::prepare_join_event::route,
    federation::membership::create_join_event::route,
    federation::membership::prepare_leave_event::route,
    federation::membership::create_leave_event::route,
    federation::membership::create_invite::route,
    federation::event::get_event::route,
    federation::event::get_room_state_ids::route,
    federation::event::get_room_state::route,
    federation::event::get_missing_events::route,
    federation::authorization::get_event_authorization::route,
    federation::backfill::get_backfill::route,
];

/// The federation listener's router: the server-server API and the key endpoints.
pub fn federation_router(state: ApiState) -> Router {
    let router = FEDERATION_ROUTES
        .iter()
        .fold(Router::new(), |router, route| route(router));
    with_layers(router).with_state(state)
}

/// The client listener's router: the client-server API, and the server-server API too, for
/// deployments whose TLS proxy forwards federation to this port (requests are authenticated
/// the same way on either listener).
pub fn router(state: ApiState) -> Router {
    use client::{
        account, device, discovery, membership, message, room, session, state as room_state,
    };
    let routes: &[AddRoute] = &[
        discovery::get_supported_versions::route,
        account::register::route,
        account::get_username_availability::route,
        account::whoami::route,
        account::get_3pids::route,
        account::change_password::route,
        account::deactivate::route,
        account::check_registration_token_validity::route,
        device::get_devices::route,
        device::get_device::route,
        device::update_device::route,
        device::delete_device::route,
        device::delete_devices::route,
        session::get_login_types::route,
        session::login::route,
        session::logout::route,
        session::logout_all::route,
        session::refresh_token::route,
        client::sync::sync_events::route,
        client::sync::sync_events_v5::route,
        client::typing::create_typing_event::route,
        client::presence::get_presence::route,
        client::space::get_hierarchy::route,
        client::knock::knock_room::route,
        client::search::search_events::route,
        client::push::get_notifications::route,
        client::presence::set_presence::route,
        client::receipt::create_receipt::route,
        client::read_marker::set_read_marker::route,
        client::user_directory::search_users::route,
        room::create_room::route,
        room::get_room_event::route,
        room::get_event_by_timestamp::route,
        message::send_message_event::route,
        room_state::send_state_event::route,
        room_state::get_state_events::route,
        room_state::get_state_event_for_key::route,
        membership::join_room_by_id::route,
        membership::invite_user::route,
        membership::leave_room::route,
        membership::kick_user::route,
        membership::ban_user::route,
        membership::unban_user::route,
        membership::joined_rooms::route,
        membership::joined_members::route,
        membership::get_member_events::route,
        membership::join_room_by_id_or_alias::route,
        membership::forget_room::route,
        client::alias::create_alias::route,
        client::alias::get_alias::route,
        client::alias::delete_alias::route,
        room::aliases::route,
        client::directory::get_public_rooms::route,
        client::directory::get_public_rooms_filtered::route,
        client::directory::get_room_visibility::route,
        client::directory::set_room_visibility::route,
        message::get_message_events::route,
        client::context::get_context::route,
        client::relations::get_relating_events::route,
        client::relations::get_relating_events_with_rel_type::route,
        client::relations::get_relating_events_with_rel_type_and_event_type::route,
        client::threads::get_threads::route,
        room::upgrade_room::route,
        client::redact::redact_event::route,
        discovery::get_capabilities::route,
        discovery::discover_homeserver::route,
        federation_discovery::discover_homeserver::route,
        discovery::discover_support::route,
        room::report_content::route,
        account::request_openid_token::route,
        client::peeking::get_current_state::route,
        client::peeking::listen_to_new_events::route,
        client::profile::get_profile::route,
        client::profile::get_display_name::route,
        client::profile::set_display_name::route,
        client::profile::get_avatar_url::route,
        client::profile::set_avatar_url::route,
        client::config::get_global_account_data::route,
        client::config::set_global_account_data::route,
        client::config::get_room_account_data::route,
        client::config::set_room_account_data::route,
        client::tag::get_tags::route,
        client::tag::create_tag::route,
        client::tag::delete_tag::route,
        client::filter::create_filter::route,
        client::filter::get_filter::route,
        client::push::get_pushrules_all::route,
        client::push::get_pushrules_global_scope::route,
        client::push::get_pushrule::route,
        client::push::set_pushrule::route,
        client::push::delete_pushrule::route,
        client::push::get_pushrule_enabled::route,
        client::push::set_pushrule_enabled::route,
        client::push::get_pushrule_actions::route,
        client::push::set_pushrule_actions::route,
        client::thirdparty::get_protocols::route,
        client::push::get_pushers::route,
        client::push::set_pusher::route,
        client::admin::get_user_info::route,
        client::keys::upload_keys::route,
        client::keys::get_keys::route,
        client::keys::claim_keys::route,
        client::keys::get_key_changes::route,
        client::keys::upload_signing_keys::route,
        client::keys::upload_signatures::route,
        client::to_device::send_event_to_device::route,
        client::dehydrated_device::put_dehydrated_device::route,
        client::dehydrated_device::get_dehydrated_device::route,
        client::dehydrated_device::delete_dehydrated_device::route,
        client::dehydrated_device::get_events::route,
        client::backup::create_backup_version::route,
        client::backup::get_latest_backup_info::route,
        client::backup::get_backup_info::route,
        client::backup::update_backup_version::route,
        client::backup::delete_backup_version::route,
        client::backup::add_backup_keys::route,
        client::backup::add_backup_keys_for_room::route,
        client::backup::add_backup_keys_for_session::route,
        client::backup::get_backup_keys::route,
        client::backup::get_backup_keys_for_room::route,
        client::backup::get_backup_keys_for_session::route,
        client::backup::delete_backup_keys::route,
        client::backup::delete_backup_keys_for_room::route,
        client::backup::delete_backup_keys_for_session::route,
    ];
    let router = routes
        .iter()
        .chain(FEDERATION_ROUTES)
        .fold(Router::new(), |router, route| route(router));
    with_layers(router).with_state(state)
}

/// What every route shares: the Matrix fallbacks, panics turned into 500s, CORS and the access
/// log.
fn with_layers<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router
        .fallback(error::unrecognized)
        .method_not_allowed_fallback(error::method_not_allowed)
        // Inside out: panics become 500s, which then get the CORS headers, and the access log
        // sees every answer.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            error::panicked as fn(Box<dyn std::any::Any + Send>) -> axum::response::Response,
        ))
        .layer(axum::middleware::from_fn(cors::cors))
        .layer(access_log::layer())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_panicking_handler_answers_500_with_cors() {
        async fn boom() -> &'static str {
            panic!("deliberate");
        }
        let app = super::with_layers(axum::Router::new().route("/boom", get(boom)));
        let request = http::Request::get("/boom")
            .header("origin", "https://app.example")
            .body(Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), 500);
        assert!(
            response
                .headers()
                .contains_key("access-control-allow-origin")
        );
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["errcode"], "M_UNKNOWN");
    }
}
