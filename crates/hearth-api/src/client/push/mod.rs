//! Push rules: the user's ruleset, kept as their global `m.push_rules` account data (see
//! `hearth_sync::push_rules`), read and changed one rule at a time. Only the `global` scope
//! exists. And the notifications the rules give (`GET /notifications`).

pub(crate) mod delete_pushrule;
pub(crate) mod get_notifications;
pub(crate) mod get_pushers;
pub(crate) mod get_pushrule;
pub(crate) mod get_pushrule_actions;
pub(crate) mod get_pushrule_enabled;
pub(crate) mod get_pushrules_all;
pub(crate) mod get_pushrules_global_scope;
pub(crate) mod set_pusher;
pub(crate) mod set_pushrule;
pub(crate) mod set_pushrule_actions;
pub(crate) mod set_pushrule_enabled;

use axum::http::StatusCode;
use hearth_sync::push_rules;
use ruma::UserId;
use ruma::api::error::ErrorKind;
use ruma::push::{AnyPushRuleRef, RuleKind, Ruleset};

use crate::{ApiError, ApiState};

/// 404 `M_NOT_FOUND`, as the spec has it for every endpoint naming a rule that does not exist.
pub(crate) fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorKind::NotFound,
        "The push rule was not found.",
    )
}

/// The user's ruleset (the server defaults until they change something).
pub(crate) async fn ruleset(state: &ApiState, user: &UserId) -> Result<Ruleset, ApiError> {
    Ok(push_rules::load(state.rooms.store(), user).await?)
}

/// One rule of the user's ruleset; 400 for a kind that does not exist, 404 for a rule that
/// does not.
pub(crate) fn rule<'r>(
    rules: &'r Ruleset,
    kind: &RuleKind,
    rule_id: &str,
) -> Result<AnyPushRuleRef<'r>, ApiError> {
    let known = [
        RuleKind::Override,
        RuleKind::Content,
        RuleKind::Room,
        RuleKind::Sender,
        RuleKind::Underride,
    ];
    if !known.contains(kind) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorKind::Unrecognized,
            format!("{kind} is not a push rule kind"),
        ));
    }
    rules.get(kind.clone(), rule_id).ok_or_else(not_found)
}

/// Change the user's ruleset in one read-modify-write, so concurrent changes don't lose each
/// other; nothing is written when `change` fails.
pub(crate) async fn update(
    state: &ApiState,
    user: &UserId,
    change: impl FnOnce(&mut Ruleset) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    state
        .rate_limits
        .settings
        .check(crate::rate_limit::RateKey::user(user))?;
    push_rules::update(state.rooms.store(), user, change).await?
}
