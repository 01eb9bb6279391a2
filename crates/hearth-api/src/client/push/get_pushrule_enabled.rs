//! `GET /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/enabled` — whether a push rule is
//! enabled.
//! <https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3pushrulesglobalkindruleidenabled>

use axum::Router;
use axum::extract::State;
use ruma::api::client::push::get_pushrule_enabled::v3 as endpoint;

use super::{rule, ruleset};
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
    let rules = ruleset(&state, &request.caller()?.user_id).await?;
    let enabled = rule(&rules, &body.kind, &body.rule_id)?.enabled();
    Ok(RumaResponse(endpoint::Response::new(enabled)))
}
