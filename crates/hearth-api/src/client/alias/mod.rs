//! Room aliases on this server.

pub(crate) mod create_alias;
pub(crate) mod delete_alias;
pub(crate) mod get_alias;

use axum::http::StatusCode;
use ruma::RoomAliasId;
use ruma::api::error::ErrorKind;

use crate::{ApiError, ApiState};

/// Aliases of other servers need federation to resolve or manage.
/// Creating or removing an alias of another server's namespace is a bad request (400
/// `M_INVALID_PARAM`): only that server may manage it.
pub(crate) fn require_own(state: &ApiState, alias: &RoomAliasId) -> Result<(), ApiError> {
    if alias.server_name() == state.server_name {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorKind::InvalidParam,
            format!(
                "{alias} belongs to {}; aliases here end in :{}",
                alias.server_name(),
                state.server_name
            ),
        ))
    }
}

pub(crate) fn require_local(state: &ApiState, alias: &RoomAliasId) -> Result<(), ApiError> {
    if alias.server_name() == state.server_name {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorKind::NotFound,
            "aliases of other servers can't be resolved without federation",
        ))
    }
}

/// The aliases an `m.room.canonical_alias` content names (`alias` and `alt_aliases`), as
/// strings; whatever is not a string is refused by [`check_canonical`].
fn canonical_aliases(content: &serde_json::Value) -> Vec<&serde_json::Value> {
    content
        .get("alias")
        .filter(|a| !a.is_null())
        .into_iter()
        .chain(
            content
                .get("alt_aliases")
                .and_then(|a| a.as_array())
                .into_iter()
                .flatten(),
        )
        .collect()
}

/// Every alias a new `m.room.canonical_alias` adds must be well-formed and point at the room
/// (400 `M_BAD_ALIAS`), as the spec asks; aliases already in the room's current event are not
/// checked again (they may have been deleted since). Aliases of other servers cannot be
/// resolved without federation, so they cannot be added.
pub(crate) async fn check_canonical(
    state: &ApiState,
    room: &ruma::RoomId,
    content: &serde_json::Value,
) -> Result<(), ApiError> {
    let bad =
        |message: String| ApiError::new(StatusCode::BAD_REQUEST, ErrorKind::BadAlias, message);
    if content
        .get("alt_aliases")
        .is_some_and(|a| !a.is_array() && !a.is_null())
    {
        return Err(bad("alt_aliases must be a list of aliases".into()));
    }
    let current = state.rooms.current_state(room).await?;
    let existing = crate::client::room_access::state_content(
        &state.rooms,
        &current,
        ruma::events::StateEventType::RoomCanonicalAlias,
        "",
    )
    .await?;
    let known: Vec<&serde_json::Value> = canonical_aliases(&existing);
    for value in canonical_aliases(content) {
        if known.contains(&value) {
            continue;
        }
        let Some(text) = value.as_str() else {
            return Err(bad(format!("{value} is not an alias")));
        };
        let alias = <&RoomAliasId>::try_from(text).map_err(|e| bad(format!("{text}: {e}")))?;
        if alias.server_name() != state.server_name {
            return Err(bad(format!(
                "{alias} belongs to another server and cannot be checked without federation"
            )));
        }
        match state.rooms.store().alias(alias).await? {
            Some((target, _)) if target == room => {}
            Some(_) => return Err(bad(format!("{alias} points at another room"))),
            None => return Err(bad(format!("{alias} does not exist"))),
        }
    }
    Ok(())
}

/// A deleted alias leaves the room's `m.room.canonical_alias` too, sent by the user who deleted
/// it. If they may not change that event (an alias creator without the power level), the
/// event keeps naming the alias: the deletion stands either way.
pub(crate) async fn drop_from_canonical(
    state: &ApiState,
    room: &ruma::RoomId,
    user: &ruma::UserId,
    alias: &RoomAliasId,
) {
    let changed = async {
        let current = state.rooms.current_state(room).await?;
        let mut content = crate::client::room_access::state_content(
            &state.rooms,
            &current,
            ruma::events::StateEventType::RoomCanonicalAlias,
            "",
        )
        .await?;
        let Some(object) = content.as_object_mut() else {
            return Ok::<_, ApiError>(false);
        };
        let mut changed = false;
        if object.get("alias").and_then(|a| a.as_str()) == Some(alias.as_str()) {
            object.remove("alias");
            changed = true;
        }
        if let Some(alt) = object.get_mut("alt_aliases").and_then(|a| a.as_array_mut()) {
            let before = alt.len();
            alt.retain(|a| a.as_str() != Some(alias.as_str()));
            changed |= alt.len() != before;
        }
        if changed {
            let draft = hearth_rooms::EventDraft::state("m.room.canonical_alias", "", content);
            let append = hearth_rooms::Append {
                sender: user.to_owned(),
                draft,
                txn: None,
            };
            state.rooms.append(room, append).await?;
        }
        Ok(changed)
    }
    .await;
    if let Err(e) = changed {
        tracing::info!(%room, %alias, error = ?e, "the canonical alias still names a deleted alias");
    }
}
