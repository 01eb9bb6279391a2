//! Profiles: display name and avatar URL. A change is also written into the user's
//! `m.room.member` event in every room they are joined to, as the spec asks, so that other
//! members see it; joins carry the current profile from the start.

pub(crate) mod get_avatar_url;
pub(crate) mod get_display_name;
pub(crate) mod get_profile;
pub(crate) mod set_avatar_url;
pub(crate) mod set_display_name;

use axum::http::StatusCode;
use hearth_rooms::{Append, EventDraft};
use hearth_store::Profile;
use ruma::UserId;
use ruma::api::error::ErrorKind;
use serde_json::{Map, Value};

use crate::{ApiError, ApiState};

/// Longest display name accepted, in characters (what other servers accept too).
pub(crate) const MAX_DISPLAYNAME_CHARS: usize = 256;
/// Longest avatar URL accepted, in bytes.
pub(crate) const MAX_AVATAR_URL_BYTES: usize = 1000;

/// A user's profile (a remote one from their server), or 404 `M_NOT_FOUND`.
pub(crate) async fn profile_of(state: &ApiState, user: &UserId) -> Result<Profile, ApiError> {
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, ErrorKind::NotFound, "no such user");
    if user.server_name() != state.server_name {
        // Asked of the user's server (a partner; anyone else is refused with 403).
        let remote = state.federation.query_profile(user).await?;
        return Ok(Profile {
            displayname: remote.displayname,
            avatar_url: remote.avatar_url,
        });
    }
    state
        .rooms
        .store()
        .profile(user)
        .await?
        .ok_or_else(not_found)
}

/// Put the profile's fields into `m.room.member` content (removing unset ones).
pub(crate) fn apply_to_member_content(profile: &Profile, content: &mut Map<String, Value>) {
    for (key, value) in [
        ("displayname", &profile.displayname),
        ("avatar_url", &profile.avatar_url),
    ] {
        match value {
            Some(value) => content.insert(key.to_owned(), value.clone().into()),
            None => content.remove(key),
        };
    }
}

/// Add the local user's current profile to the content of their own membership event (a join).
pub(crate) async fn add_profile(
    state: &ApiState,
    user: &UserId,
    content: &mut Value,
) -> Result<(), ApiError> {
    if user.server_name() != state.server_name {
        return Ok(());
    }
    if let (Some(profile), Some(content)) = (
        state.rooms.store().profile(user).await?,
        content.as_object_mut(),
    ) {
        apply_to_member_content(&profile, content);
    }
    Ok(())
}

/// Rewrite the user's `m.room.member` event in every room they are joined to with their current
/// profile. A room that refuses the update (the user was just kicked, say) is logged and
/// skipped: the profile itself has changed either way.
pub(crate) async fn propagate(state: &ApiState, user: &UserId) -> Result<(), ApiError> {
    let store = state.rooms.store();
    let Some(profile) = store.profile(user).await? else {
        return Ok(());
    };
    for membership in store.memberships_of(user).await?.iter() {
        if membership.membership != "join" {
            continue;
        }
        let Some(event) = state.rooms.pdu(&membership.event_id).await? else {
            continue;
        };
        let old: Map<String, Value> =
            serde_json::from_str(event.content().get()).unwrap_or_default();
        let mut content = old.clone();
        // These described the original join, not this update.
        content.remove("reason");
        content.remove("join_authorised_via_users_server");
        content.insert("membership".into(), "join".into());
        apply_to_member_content(&profile, &mut content);
        if ["displayname", "avatar_url"]
            .iter()
            .all(|key| old.get(*key) == content.get(*key))
        {
            continue;
        }
        let draft = EventDraft::state("m.room.member", user.as_str(), Value::Object(content));
        let append = Append {
            sender: user.to_owned(),
            draft,
            txn: None,
        };
        if let Err(error) = state.rooms.append(&membership.room_id, append).await {
            tracing::warn!(%user, room = %membership.room_id, %error, "profile update not sent to room");
        }
    }
    Ok(())
}
