//! `POST /_matrix/client/v3/register` — create an account (closed unless the operator opens it;
//! with `token_required`, only for holders of a registration token).
//! <https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3register>

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use hearth_accounts::{DeviceRequest, Registered};
use ruma::api::client::account::register::{RegistrationKind, v3 as endpoint};
use ruma::api::error::ErrorKind;

use crate::extract::Ruma;
use crate::rate_limit::{ClientIp, RateKey};
use crate::ruma_glue::{RumaResponse, route as route_endpoint};
use crate::uiaa::UiaRequest;
use crate::{ApiError, ApiState};

pub(crate) fn route(router: Router<ApiState>) -> Router<ApiState> {
    route_endpoint::<endpoint::Request, _, _>(router, handler)
}

async fn handler(
    State(state): State<ApiState>,
    ClientIp(ip): ClientIp,
    request: Ruma<endpoint::Request>,
) -> Result<RumaResponse<endpoint::Response>, ApiError> {
    state.rate_limits.register.check(RateKey::ip(ip))?;
    let body = request.body;
    if body.kind == RegistrationKind::Guest {
        return register_guest(&state, body).await;
    }
    if !state.registration_enabled {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorKind::Forbidden,
            "registration is closed on this server",
        ));
    }
    // Upgrading a guest: the guest's own token, and its own localpart as the username.
    let upgrading = match &body.guest_access_token {
        Some(token) => Some(guest_to_upgrade(&state, token, body.username.as_deref()).await?),
        None => None,
    };
    // A taken or invalid name is refused before the client goes through the stages (and before
    // a registration token use is reserved for it).
    if let (Some(name), None) = (&body.username, &upgrading) {
        require_available(&state, name).await?;
    }
    // The username and password may come with any request of the session (the spec keeps
    // them optional until the last stage): the first request's are remembered for the others.
    let parameters = serde_json::json!({
        "username": body.username,
        "password": body.password,
        "device_id": body.device_id,
        "initial_device_display_name": body.initial_device_display_name,
    });
    let uia = UiaRequest::registration(state.registration_token_required).remembering(parameters);
    let authorized = state
        .uia
        .authorize(&state, &uia, body.auth.as_ref())
        .await?;
    let first = authorized.first_request().cloned().unwrap_or_default();
    let remembered = |key: &str| first.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    let username = body.username.clone().or_else(|| remembered("username"));
    let password = body.password.clone().or_else(|| remembered("password"));
    let device_id = body
        .device_id
        .clone()
        .or_else(|| remembered("device_id").map(Into::into));
    let display_name = body
        .initial_device_display_name
        .clone()
        .or_else(|| remembered("initial_device_display_name"));
    // Application services register without a password; everyone else needs one by now.
    if body.login_type.is_none() && password.as_deref().is_none_or(str::is_empty) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorKind::MissingParam,
            "a password is required",
        ));
    }
    if body.username.is_none()
        && upgrading.is_none()
        && let Some(name) = &username
    {
        require_available(&state, name).await?;
    }

    let localpart = match &username {
        Some(name) => name.clone(),
        None => crate::uiaa::random_localpart(),
    };
    let device = DeviceRequest {
        device_id,
        display_name,
        inhibit_login: body.inhibit_login,
        refresh_token: body.refresh_token,
    };
    // On failure `authorized` is dropped and the session kept: the client may retry it, e.g.
    // with another username, without another token use.
    let registered = match &upgrading {
        Some(guest) => {
            let password = password.as_deref().unwrap_or_default();
            state
                .accounts
                .upgrade_guest(guest, password, device)
                .await?
        }
        None => {
            state
                .accounts
                .register(&localpart, password.as_deref(), device, false)
                .await?
        }
    };
    if let Some(token) = authorized.registration_token() {
        // The account exists whatever happens here; a failure only leaves the use pending
        // until the next restart.
        if let Err(e) = state.accounts.complete_registration_token(token).await {
            tracing::error!(error = %e, "could not count a registration token use");
        }
    }
    authorized.finish();
    Ok(answer(registered))
}

/// The registered user, and their session unless `inhibit_login`.
fn answer(registered: Registered) -> RumaResponse<endpoint::Response> {
    let mut response = endpoint::Response::new(registered.user_id);
    if let Some(session) = registered.session {
        response.access_token = Some(session.access_token);
        response.device_id = Some(session.device_id);
        response.refresh_token = session.refresh_token;
        response.expires_in = session.expires_in;
    }
    RumaResponse(response)
}

/// The guest whose `guest_access_token` this is, if `username` (when given) is its localpart.
async fn guest_to_upgrade(
    state: &ApiState,
    token: &str,
    username: Option<&str>,
) -> Result<ruma::OwnedUserId, ApiError> {
    let who = state.accounts.authenticate(token).await?;
    if !who.is_guest {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorKind::Forbidden,
            "guest_access_token is not a guest's access token",
        ));
    }
    if username.is_some_and(|name| name != who.user_id.localpart()) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorKind::InvalidUsername,
            "upgrading a guest keeps its user id: the username must be the guest's localpart",
        ));
    }
    Ok(who.user_id)
}

/// `kind=guest`: a guest account with a signed-in device, no user-interactive auth, when
/// `[registration] guests` allows it (whatever `enabled` says); the username and password
/// are ignored, as the spec says.
async fn register_guest(
    state: &ApiState,
    body: endpoint::Request,
) -> Result<RumaResponse<endpoint::Response>, ApiError> {
    if !state.guests_enabled {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorKind::GuestAccessForbidden,
            "guest access is not enabled on this server",
        ));
    }
    let device = DeviceRequest {
        device_id: None,
        display_name: body.initial_device_display_name,
        inhibit_login: false,
        refresh_token: body.refresh_token,
    };
    let registered = state.accounts.register_guest(device).await?;
    Ok(answer(registered))
}

/// 400 `M_USER_IN_USE` (or the account service's answer for an invalid name) unless the
/// localpart can be registered.
async fn require_available(state: &ApiState, name: &str) -> Result<(), ApiError> {
    if state.accounts.available(name).await? {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorKind::UserInUse,
            "this username is taken",
        ))
    }
}
