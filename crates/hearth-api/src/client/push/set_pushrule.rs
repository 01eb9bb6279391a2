//! `PUT /_matrix/client/v3/pushrules/global/{kind}/{ruleId}` — create or change a user-defined
//! push rule, optionally placed `before` or `after` another one.
//! <https://spec.matrix.org/v1.16/client-server-api/#put_matrixclientv3pushrulesglobalkindruleid>

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use ruma::api::client::push::set_pushrule::v3 as endpoint;
use ruma::api::error::ErrorKind;
use ruma::push::{InsertPushRuleError, NewPushRule, Ruleset};

use super::update;
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
    // Spec: with both, the rule goes right before `before`; `after` no longer matters.
    let (before, after) = match (body.before.as_deref(), body.after.as_deref()) {
        (Some(before), _) => (Some(before), None),
        (None, after) => (None, after),
    };
    update(&state, &request.caller()?.user_id, |rules| {
        insert(rules, body.rule.clone(), before, after)
    })
    .await?;
    Ok(RumaResponse(endpoint::Response::new()))
}

/// Insert or replace the rule, keeping the `enabled` state of a rule it replaces.
fn insert(
    rules: &mut Ruleset,
    rule: NewPushRule,
    before: Option<&str>,
    after: Option<&str>,
) -> Result<(), ApiError> {
    let json = match &rule {
        NewPushRule::Override(r) | NewPushRule::Underride(r) => serde_json::to_value(r),
        NewPushRule::Content(r) => serde_json::to_value(r),
        NewPushRule::Room(r) => serde_json::to_value(r),
        NewPushRule::Sender(r) => serde_json::to_value(r),
        _ => Ok(serde_json::Value::Null),
    }
    .map_err(ApiError::internal)?;
    if let Some(why) = hearth_sync::push_rules::rule_too_costly(&json) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorKind::InvalidParam,
            why,
        ));
    }
    let (kind, rule_id) = (rule.kind(), rule.rule_id().to_owned());
    let enabled = rules.get(kind.clone(), &rule_id).map(|r| r.enabled());
    // `Ruleset::insert` moves an existing rule to the wrong side of its anchor when the anchor
    // is below it (it takes the anchor's index from before the move), so a rule being moved is
    // taken out first and placed like a new one. Server-default ids are left for `insert` to
    // refuse.
    let moving = before.is_some() || after.is_some();
    if moving && enabled.is_some() && !rule_id.starts_with('.') {
        rules
            .remove(kind.clone(), &rule_id)
            .map_err(ApiError::internal)?;
    }
    rules.insert(rule, after, before).map_err(insert_error)?;
    let count = hearth_sync::push_rules::user_rule_count(rules);
    if count > hearth_sync::push_rules::MAX_USER_RULES {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorKind::InvalidParam,
            format!(
                "at most {} push rules of your own",
                hearth_sync::push_rules::MAX_USER_RULES
            ),
        ));
    }
    if enabled == Some(false) {
        rules
            .set_enabled(kind, &rule_id, false)
            .map_err(ApiError::internal)?;
    }
    Ok(())
}

fn insert_error(e: InsertPushRuleError) -> ApiError {
    let invalid = |message: &str| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorKind::InvalidParam,
            message.to_owned(),
        )
    };
    match e {
        InsertPushRuleError::ServerDefaultRuleId => {
            invalid("rule ids starting with '.' are reserved for server-default rules")
        }
        InsertPushRuleError::InvalidRuleId => invalid("rule ids may not contain '/' or '\\'"),
        InsertPushRuleError::RelativeToServerDefaultRule => {
            invalid("rules cannot be placed relative to server-default rules")
        }
        // The spec's example answer for this case.
        InsertPushRuleError::UnknownRuleId => ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorKind::Unknown,
            "before/after rule not found",
        ),
        other => invalid(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use ruma::push::{NewPatternedPushRule, RuleKind};
    use ruma::user_id;

    use super::*;

    fn content(id: &str) -> NewPushRule {
        NewPushRule::Content(NewPatternedPushRule::new(id.into(), id.into(), vec![]))
    }

    fn order(rules: &Ruleset) -> Vec<&str> {
        rules.content.iter().map(|r| r.rule_id.as_str()).collect()
    }

    #[test]
    fn placement_and_moves() {
        let mut rules = Ruleset::server_default(user_id!("@u:example.org"));
        insert(&mut rules, content("c"), None, None).unwrap();
        insert(&mut rules, content("b"), None, None).unwrap();
        insert(&mut rules, content("a"), None, None).unwrap();
        assert_eq!(order(&rules), ["a", "b", "c"]);
        // Moving down, relative to a rule below it.
        insert(&mut rules, content("a"), Some("c"), None).unwrap();
        assert_eq!(order(&rules), ["b", "a", "c"]);
        insert(&mut rules, content("b"), None, Some("c")).unwrap();
        assert_eq!(order(&rules), ["a", "c", "b"]);
        // Moving up.
        insert(&mut rules, content("b"), Some("a"), None).unwrap();
        assert_eq!(order(&rules), ["b", "a", "c"]);
        // Updating in place keeps the position and the enabled state.
        rules.set_enabled(RuleKind::Content, "a", false).unwrap();
        insert(&mut rules, content("a"), None, None).unwrap();
        assert_eq!(order(&rules), ["b", "a", "c"]);
        insert(&mut rules, content("a"), None, Some("c")).unwrap();
        assert_eq!(order(&rules), ["b", "c", "a"]);
        assert!(!rules.get(RuleKind::Content, "a").unwrap().enabled());
    }

    #[test]
    fn refusals() {
        let mut rules = Ruleset::server_default(user_id!("@u:example.org"));
        insert(&mut rules, content("a"), None, None).unwrap();
        let errcode = |r: Result<(), ApiError>| r.unwrap_err().kind;
        assert_eq!(
            errcode(insert(&mut rules, content(".m.rule.x"), None, None)),
            ErrorKind::InvalidParam
        );
        assert_eq!(
            errcode(insert(&mut rules, content("a/b"), None, None)),
            ErrorKind::InvalidParam
        );
        assert_eq!(
            errcode(insert(
                &mut rules,
                content("b"),
                Some(".m.rule.master"),
                None
            )),
            ErrorKind::InvalidParam
        );
        assert_eq!(
            errcode(insert(&mut rules, content("b"), Some("nope"), None)),
            ErrorKind::Unknown
        );
    }
}
