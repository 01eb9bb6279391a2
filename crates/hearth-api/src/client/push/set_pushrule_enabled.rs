//! `PUT /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/enabled` — enable or disable a push
//! rule (server-default rules included).
//! <https://spec.matrix.org/v1.16/client-server-api/#put_matrixclientv3pushrulesglobalkindruleidenabled>

use axum::Router;
use axum::extract::State;
use ruma::api::client::push::set_pushrule_enabled::v3 as endpoint;

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
            .set_enabled(body.kind.clone(), &body.rule_id, body.enabled)
            .map_err(|_| not_found())
    })
    .await?;
    Ok(RumaResponse(endpoint::Response::new()))
}
