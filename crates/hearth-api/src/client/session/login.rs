//! `POST /_matrix/client/v3/login` — password login.
//! <https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3login>

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use hearth_accounts::DeviceRequest;
use ruma::api::client::session::login::v3::{self as endpoint, LoginInfo};
use ruma::api::client::uiaa::UserIdentifier;
use ruma::api::error::ErrorKind;
use ruma::{OwnedUserId, UserId};

use crate::extract::Ruma;
use crate::rate_limit::{ClientIp, RateKey};
use crate::ruma_glue::{RumaResponse, route as route_endpoint};
use crate::{ApiError, ApiState};

pub(crate) fn route(router: Router<ApiState>) -> Router<ApiState> {
    route_endpoint::<endpoint::Request, _, _>(router, handler)
}

fn forbidden() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        ErrorKind::Forbidden,
        "invalid username or password",
    )
}

/// `@alice:server` or just `alice`; a user of another server can't log in here.
fn user_id(state: &ApiState, user: &str) -> Result<OwnedUserId, ApiError> {
    let user_id = if user.starts_with('@') {
        UserId::parse(user).map_err(|_| forbidden())?
    } else {
        UserId::parse_with_server_name(user.to_lowercase(), &state.server_name)
            .map_err(|_| forbidden())?
    };
    if user_id.server_name() != state.server_name {
        return Err(forbidden());
    }
    Ok(user_id)
}

async fn handler(
    State(state): State<ApiState>,
    ClientIp(ip): ClientIp,
    request: Ruma<endpoint::Request>,
) -> Result<RumaResponse<endpoint::Response>, ApiError> {
    let address = RateKey::ip(ip);
    state.rate_limits.login.check_available(&address)?;
    let body = request.body;
    let LoginInfo::Password(password) = &body.login_info else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorKind::Unknown,
            "only m.login.password is supported",
        ));
    };
    #[allow(deprecated)]
    let user = match (&password.identifier, &password.user) {
        (Some(UserIdentifier::Matrix(id)), _) => id.user.clone(),
        (None, Some(user)) => user.clone(),
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorKind::Unknown,
                "only the m.id.user identifier is supported",
            ));
        }
    };
    let user_id = match user_id(&state, &user) {
        Ok(user_id) => user_id,
        Err(e) => {
            state.rate_limits.login.charge(address);
            return Err(e);
        }
    };
    let account = RateKey::user(&user_id);
    state.rate_limits.login_account.check_available(&account)?;
    let device = DeviceRequest {
        device_id: body.device_id.clone(),
        display_name: body.initial_device_display_name.clone(),
        inhibit_login: false,
        refresh_token: body.refresh_token,
    };
    let session = match state
        .accounts
        .login_password(&user_id, &password.password, device)
        .await
    {
        Ok(session) => session,
        Err(e) => {
            if matches!(e, hearth_accounts::AccountError::Forbidden) {
                state.rate_limits.login.charge(address);
                state.rate_limits.login_account.charge(account);
            }
            return Err(e.into());
        }
    };
    let mut response =
        endpoint::Response::new(session.user_id, session.access_token, session.device_id);
    response.refresh_token = session.refresh_token;
    response.expires_in = session.expires_in;
    Ok(RumaResponse(response))
}
