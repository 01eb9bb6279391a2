//! `POST /_matrix/client/v3/keys/device_signing/upload` — publish the user's cross-signing
//! keys. User-interactive authentication, except for a first set-up (no master key yet) or an
//! upload of the keys already stored.
//! <https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3keysdevice_signingupload>

use axum::Router;
use axum::extract::State;
use hearth_e2ee::SigningKeysUpload;
use ruma::api::client::keys::upload_signing_keys::v3 as endpoint;

use crate::extract::Ruma;
use crate::ruma_glue::{RumaResponse, route as route_endpoint};
use crate::uiaa::UiaRequest;
use crate::{ApiError, ApiState};

pub(crate) fn route(router: Router<ApiState>) -> Router<ApiState> {
    route_endpoint::<endpoint::Request, _, _>(router, handler)
}

async fn handler(
    State(state): State<ApiState>,
    request: Ruma<endpoint::Request>,
) -> Result<RumaResponse<endpoint::Response>, ApiError> {
    let user = request.caller()?.user_id.clone();
    let body = request.body;
    let upload = SigningKeysUpload {
        master: body.master_key.as_ref(),
        self_signing: body.self_signing_key.as_ref(),
        user_signing: body.user_signing_key.as_ref(),
    };
    let authorized = if state.e2ee.signing_upload_needs_auth(&user, &upload).await? {
        let uia = UiaRequest::password("POST /keys/device_signing/upload", &user);
        Some(
            state
                .uia
                .authorize(&state, &uia, body.auth.as_ref())
                .await?,
        )
    } else {
        None
    };
    state.e2ee.upload_signing_keys(&user, &upload).await?;
    if let Some(authorized) = authorized {
        authorized.finish();
    }
    Ok(RumaResponse(endpoint::Response::new()))
}
