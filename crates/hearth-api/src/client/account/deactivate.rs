//! `POST /_matrix/client/v3/account/deactivate` — deactivate the caller's account for good
//! (user-interactive authentication: `m.login.password`).
//! <https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3accountdeactivate>

use axum::Router;
use axum::extract::State;
use hearth_rooms::{Append, EventDraft};
use ruma::UserId;
use ruma::api::client::account::ThirdPartyIdRemovalStatus;
use ruma::api::client::account::deactivate::v3 as endpoint;
use serde_json::json;

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
    // NOTSPEC: as for the password change, an access token is required (no email stage).
    let user = request.caller()?.user_id.clone();
    let body = request.body;
    let uia = UiaRequest::password("POST /account/deactivate", &user);
    let authorized = state
        .uia
        .authorize(&state, &uia, body.auth.as_ref())
        .await?;
    leave_all_rooms(&state, &user).await?;
    // Removes the password, every device and every access token.
    state.accounts.deactivate(&user).await?;
    if body.erase {
        // Who joins a room from now on sees what the user sent there redacted.
        state.rooms.store().set_erased(&user).await?;
    }
    authorized.finish();
    Ok(RumaResponse(endpoint::Response::new(
        ThirdPartyIdRemovalStatus::NoSupport,
    )))
}

/// Leave every room the user is in, and decline every invite and knock. A room where the leave
/// is refused (it should not be: anyone may leave) is logged and skipped, so that one broken
/// room cannot keep an account from being deactivated.
async fn leave_all_rooms(state: &ApiState, user: &UserId) -> Result<(), ApiError> {
    let memberships = state
        .rooms
        .store()
        .memberships_of(user)
        .await
        .map_err(ApiError::internal)?;
    for membership in memberships.iter() {
        if !matches!(membership.membership.as_str(), "join" | "invite" | "knock") {
            continue;
        }
        // Not rate limited, and an invite from a partner is rejected through its server.
        let room = &membership.room_id;
        let left = match crate::client::membership::outside_invite(state, room, user).await {
            Ok(Some(_)) => state
                .federation
                .reject_invite(user, room, None)
                .await
                .map(|_| ())
                .map_err(ApiError::from),
            _ => {
                let draft = EventDraft::state(
                    "m.room.member",
                    user.as_str(),
                    json!({"membership": "leave"}),
                );
                let append = Append {
                    sender: user.to_owned(),
                    draft,
                    txn: None,
                };
                state
                    .rooms
                    .append(room, append)
                    .await
                    .map(|_| ())
                    .map_err(ApiError::from)
            }
        };
        if let Err(e) = left {
            tracing::warn!(%user, room_id = %membership.room_id, error = %e.message, "could not leave a room while deactivating");
        }
    }
    Ok(())
}
