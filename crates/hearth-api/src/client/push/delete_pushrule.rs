//! `DELETE /_matrix/client/v3/pushrules/global/{kind}/{ruleId}` — remove a user-defined push
//! rule.
//! <https://spec.matrix.org/v1.16/client-server-api/#delete_matrixclientv3pushrulesglobalkindruleid>

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use ruma::api::client::push::delete_pushrule::v3 as endpoint;
use ruma::api::error::ErrorKind;
use ruma::push::RemovePushRuleError;

use super::{not_found, update};
use crate::extract::Ruma;
use crate::ruma_glue::{RumaResponse, route as route_endpoint};
use crate::{ApiError, ApiState};

pub(crate) fn route(router: Router<ApiState>) -> Router<ApiState> {
    route_endpoint::<endpoint::Request, _, _>(router, handler)
}

async fn handler(
    State(state): State<ApiState>,
    request: Ruma<endpoint::Request>,
) -> Result<RumaResponse<endpoint::Response>, ApiError> {
    let body = &request.body;
    update(&state, &request.caller()?.user_id, |rules| {
        rules
            .remove(body.kind.clone(), &body.rule_id)
            .map_err(|e| match e {
                // The spec names no error for this; 400 M_INVALID_PARAM is what a client can act
                // on (Synapse answers 400 too). Such rules can only be disabled.
                RemovePushRuleError::ServerDefault => ApiError::new(
                    StatusCode::BAD_REQUEST,
                    ErrorKind::InvalidParam,
                    "server-default push rules cannot be deleted; disable them instead",
                ),
                _ => not_found(),
            })
    })
    .await?;
    Ok(RumaResponse(endpoint::Response::new()))
}
