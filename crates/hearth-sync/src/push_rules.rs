//! Push rules live in the user's global `m.push_rules` account data, as `{"global": ruleset}`, so
//! `/sync` delivers them (and every change to them) like any other account data, as Synapse does.
//!
//! The full ruleset is stored, server-default rules included, because clients (matrix-sdk,
//! Element) read it from account data as it is. Reads merge the stored ruleset with the current
//! server defaults ([`Ruleset::update_with_server_default`]), so a newer set of defaults reaches
//! existing users without a migration while their `enabled`/`actions` choices are kept.

use hearth_store::{Store, StoreError};
use ruma::UserId;
use ruma::push::Ruleset;
use serde::Deserialize;
use serde_json::{Map, Value};

/// The account-data type push rules are kept in.
pub const PUSH_RULES_TYPE: &str = "m.push_rules";

/// The kinds a ruleset has; all of them are written, empty or not, as Synapse does, because some
/// clients index them without checking.
const KINDS: &[&str] = &["override", "content", "room", "sender", "underride"];

#[derive(Deserialize)]
struct Content {
    global: Ruleset,
}

/// Push rules are evaluated against every event a user may be notified of, on the sync path;
/// ruma compiles a word pattern into a regex per evaluation (and panics on one too large to
/// compile). These bounds keep a rule's cost small and flat: no real rule comes near them.
pub const MAX_PATTERN_BYTES: usize = 256;
/// Wildcards (`*`, `?`) in one pattern.
pub const MAX_WILDCARDS: usize = 16;
/// Conditions of one rule.
pub const MAX_CONDITIONS: usize = 16;
/// One rule, as JSON.
pub const MAX_RULE_BYTES: usize = 4096;
/// User-defined rules of one user.
pub const MAX_USER_RULES: usize = 200;

/// Why a rule (as JSON, new or stored) is beyond the bounds, if it is.
pub fn rule_too_costly(rule: &Value) -> Option<String> {
    let size = rule.to_string().len();
    if size > MAX_RULE_BYTES {
        return Some(format!(
            "a push rule may take at most {MAX_RULE_BYTES} bytes, not {size}"
        ));
    }
    let conditions = rule.get("conditions").and_then(Value::as_array);
    if conditions.is_some_and(|c| c.len() > MAX_CONDITIONS) {
        return Some(format!(
            "a push rule may have at most {MAX_CONDITIONS} conditions"
        ));
    }
    let patterns = rule.get("pattern").into_iter().chain(
        conditions
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("pattern")),
    );
    for pattern in patterns.filter_map(Value::as_str) {
        if pattern.len() > MAX_PATTERN_BYTES {
            return Some(format!(
                "a push rule pattern may take at most {MAX_PATTERN_BYTES} bytes"
            ));
        }
        if pattern.chars().filter(|c| matches!(c, '*' | '?')).count() > MAX_WILDCARDS {
            return Some(format!(
                "a push rule pattern may have at most {MAX_WILDCARDS} wildcards"
            ));
        }
    }
    None
}

/// Drop stored rules beyond the bounds (written before they existed): a rule that would stall
/// or break every sync of its user is worse than a rule that is gone.
fn drop_costly(rules: &mut Ruleset, user: &UserId) {
    fn keep<R: serde::Serialize>(rule: &R, user: &UserId) -> bool {
        let json = serde_json::to_value(rule).unwrap_or(Value::Null);
        match rule_too_costly(&json) {
            None => true,
            Some(why) => {
                tracing::warn!(%user, rule = ?json.get("rule_id"), why, "ignoring a stored push rule");
                false
            }
        }
    }
    rules.override_.retain(|r| keep(r, user));
    rules.content.retain(|r| keep(r, user));
    rules.room.retain(|r| keep(r, user));
    rules.sender.retain(|r| keep(r, user));
    rules.underride.retain(|r| keep(r, user));
}

/// How many rules the user defined (the server's own have ids starting with a dot).
pub fn user_rule_count(rules: &Ruleset) -> usize {
    rules
        .iter()
        .filter(|rule| !rule.rule_id().starts_with('.'))
        .count()
}

/// The user's ruleset from stored `m.push_rules` content; the server defaults when there is none
/// (or it cannot be read, which is logged).
pub fn ruleset_from(content: Option<&str>, user: &UserId) -> Ruleset {
    let defaults = Ruleset::server_default(user);
    let Some(content) = content else {
        return defaults;
    };
    match serde_json::from_str::<Content>(content) {
        Ok(Content { global: mut rules }) => {
            drop_costly(&mut rules, user);
            rules.update_with_server_default(defaults);
            rules
        }
        Err(e) => {
            tracing::warn!(%user, error = %e, "unreadable m.push_rules; using the server defaults");
            defaults
        }
    }
}

/// The ruleset as JSON, with every kind present (ruma leaves out the empty ones).
pub fn ruleset_json(rules: &Ruleset) -> Value {
    let mut global = match serde_json::to_value(rules) {
        Ok(Value::Object(global)) => global,
        // A ruleset is a struct of lists; it always serialises to an object.
        _ => Map::new(),
    };
    for kind in KINDS {
        global
            .entry(*kind)
            .or_insert_with(|| Value::Array(Vec::new()));
    }
    Value::Object(global)
}

/// `m.push_rules` content holding this ruleset.
pub fn content_of(rules: &Ruleset) -> String {
    let mut content = Map::new();
    content.insert("global".into(), ruleset_json(rules));
    Value::Object(content).to_string()
}

/// The user's push rules (the server defaults if they have never been stored).
pub async fn load(store: &Store, user: &UserId) -> Result<Ruleset, StoreError> {
    let content = store.account_data(user, None, PUSH_RULES_TYPE).await?;
    Ok(ruleset_from(content.as_deref(), user))
}

/// Store the server defaults as the user's push rules unless they already have some, so that
/// `/sync` has `m.push_rules` to deliver before the user ever changes a rule.
pub async fn ensure_stored(store: &Store, user: &UserId) -> Result<(), StoreError> {
    if store
        .shared_account_data(user, None, PUSH_RULES_TYPE)
        .await?
        .is_some()
    {
        return Ok(());
    }
    // Checked again inside the write: a concurrent sync or rule change may have got there first.
    store
        .update_account_data(user, None, PUSH_RULES_TYPE, |current| {
            current
                .is_none()
                .then(|| content_of(&Ruleset::server_default(user)))
        })
        .await?;
    Ok(())
}

/// Change the user's push rules atomically: `change` gets the current ruleset (the defaults if
/// none is stored). When it succeeds the result is stored; when it fails nothing is written and
/// its error is returned in the inner `Result`.
pub async fn update<E>(
    store: &Store,
    user: &UserId,
    change: impl FnOnce(&mut Ruleset) -> Result<(), E>,
) -> Result<Result<(), E>, StoreError> {
    let mut outcome = Ok(());
    store
        .update_account_data(user, None, PUSH_RULES_TYPE, |current| {
            let mut rules = ruleset_from(current, user);
            match change(&mut rules) {
                Ok(()) => Some(content_of(&rules)),
                Err(e) => {
                    outcome = Err(e);
                    None
                }
            }
        })
        .await?;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use ruma::push::{NewPatternedPushRule, NewPushRule, RuleKind};
    use ruma::user_id;

    use super::*;

    #[test]
    fn content_round_trips_with_every_kind() {
        let user = user_id!("@alice:example.org");
        let mut rules = Ruleset::server_default(user);
        rules
            .insert(
                NewPushRule::Content(NewPatternedPushRule::new(
                    "cake".into(),
                    "cake*".into(),
                    vec![],
                )),
                None,
                None,
            )
            .unwrap();
        rules
            .set_enabled(RuleKind::Override, ".m.rule.master", true)
            .unwrap();
        let content = content_of(&rules);
        let value: Value = serde_json::from_str(&content).unwrap();
        for kind in KINDS {
            assert!(value["global"][kind].is_array(), "{kind} in {value}");
        }
        assert_eq!(value["global"]["room"], Value::Array(vec![]));

        let back = ruleset_from(Some(&content), user);
        assert!(back.get(RuleKind::Content, "cake").is_some());
        assert!(
            back.get(RuleKind::Override, ".m.rule.master")
                .unwrap()
                .enabled()
        );
    }

    #[test]
    fn missing_or_broken_content_gives_the_defaults() {
        let user = user_id!("@alice:example.org");
        for content in [None, Some("not json"), Some("{\"global\": 3}")] {
            let rules = ruleset_from(content, user);
            let master = rules.get(RuleKind::Override, ".m.rule.master").unwrap();
            assert!(!master.enabled());
            assert!(master.is_server_default());
        }
    }

    #[test]
    fn stored_rules_gain_new_server_defaults() {
        let user = user_id!("@alice:example.org");
        // A ruleset stored before `.m.rule.is_user_mention` existed, with master switched on.
        let content = r#"{"global": {"override": [
            {"rule_id": ".m.rule.master", "default": true, "enabled": true,
             "conditions": [], "actions": []}
        ]}}"#;
        let rules = ruleset_from(Some(content), user);
        assert!(
            rules
                .get(RuleKind::Override, ".m.rule.master")
                .unwrap()
                .enabled()
        );
        assert!(
            rules
                .get(RuleKind::Override, ".m.rule.is_user_mention")
                .is_some()
        );
    }
}
