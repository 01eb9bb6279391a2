//! Membership endpoints. They all write an `m.room.member` event for some user; the auth rules
//! in the pipeline decide whether the sender may.

pub(crate) mod ban_user;
pub(crate) mod forget_room;
pub(crate) mod get_member_events;
pub(crate) mod invite_user;
pub(crate) mod join_room_by_id;
pub(crate) mod join_room_by_id_or_alias;
pub(crate) mod joined_members;
pub(crate) mod joined_rooms;
pub(crate) mod kick_user;
pub(crate) mod leave_room;
pub(crate) mod unban_user;

use axum::http::StatusCode;
use hearth_rooms::{Append, EventDraft};
use ruma::api::error::ErrorKind;
use ruma::{RoomId, UserId};
use serde_json::json;

use crate::{ApiError, ApiState};

/// Append `sender`'s change of `target`'s membership, with an optional reason.
pub(crate) async fn set_membership(
    state: &ApiState,
    room: &RoomId,
    sender: &UserId,
    target: &UserId,
    membership: &str,
    reason: Option<&str>,
) -> Result<(), ApiError> {
    check_membership_rate(state, sender, room)?;
    let mut content = json!({ "membership": membership });
    if let Some(reason) = reason {
        content["reason"] = reason.into();
    }
    // Joins, invites and knocks carry the target's profile, so that members see a name from
    // the start.
    if matches!(membership, "join" | "invite" | "knock") {
        crate::client::profile::add_profile(state, target, &mut content).await?;
    }
    let draft = EventDraft::state("m.room.member", target.as_str(), content);
    state
        .rooms
        .append(
            room,
            Append {
                sender: sender.to_owned(),
                draft,
                txn: None,
            },
        )
        .await?;
    Ok(())
}

/// Join `user` to `room`: through the room's pipeline when the room is live here (one of our
/// users is in it, or nobody else could be asked), else over federation through `via`, the
/// server that invited the user, the room id's server and the servers last known in the room
/// (only partners are asked). A room we left is joined again over federation, as its state
/// moved on without us.
pub(crate) async fn join(
    state: &ApiState,
    room: &RoomId,
    user: &UserId,
    via: &[ruma::OwnedServerName],
    reason: Option<&str>,
) -> Result<(), ApiError> {
    let store = state.rooms.store();
    let here = store.room_head(room).await?.is_some();
    let local_room = room.server_name() == Some(&*state.server_name);
    let inviter = outside_invite(state, room, user).await?;
    let mut others = Vec::new();
    if here && inviter.is_none() {
        let servers = store.servers_in_room(room).await?;
        if servers.contains(&state.server_name) || local_room {
            return set_membership(state, room, user, user, "join", reason).await;
        }
        others = servers;
    }
    if !here && inviter.is_none() && local_room && via.is_empty() {
        return set_membership(state, room, user, user, "join", reason).await;
    }
    if here && inviter.is_none() && via.is_empty() && others.is_empty() {
        return set_membership(state, room, user, user, "join", reason).await;
    }
    check_membership_rate(state, user, room)?;
    let mut content = json!({});
    if let Some(reason) = reason {
        content["reason"] = reason.into();
    }
    crate::client::profile::add_profile(state, user, &mut content).await?;
    let content = match content {
        serde_json::Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    let mut servers = via.to_vec();
    servers.extend(inviter);
    servers.extend(others);
    state
        .federation
        .join_remote(user, room, &servers, content)
        .await?;
    Ok(())
}

/// Invite `target` to `room` as `sender`: a partner's user through their server, which signs
/// the invite before it enters the room.
pub(crate) async fn invite(
    state: &ApiState,
    room: &RoomId,
    sender: &UserId,
    target: &UserId,
    reason: Option<&str>,
) -> Result<(), ApiError> {
    if target.server_name() == state.server_name {
        return set_membership(state, room, sender, target, "invite", reason).await;
    }
    check_membership_rate(state, sender, room)?;
    let mut content = serde_json::Map::new();
    if let Some(reason) = reason {
        content.insert("reason".into(), reason.into());
    }
    state
        .federation
        .invite_remote(sender, room, target, content)
        .await?;
    Ok(())
}

/// Leave `room` (or decline an invite to it). An invite from a partner to a room we are not
/// in is rejected through the inviting server.
pub(crate) async fn leave(
    state: &ApiState,
    room: &RoomId,
    user: &UserId,
    reason: Option<&str>,
) -> Result<(), ApiError> {
    if outside_invite(state, room, user).await?.is_some() {
        check_membership_rate(state, user, room)?;
        state.federation.reject_invite(user, room, reason).await?;
        return Ok(());
    }
    set_membership(state, room, user, user, "leave", reason).await
}

/// The server that invited `user` to `room`, when that invite (to a room we are not in) is
/// the user's current membership.
pub(crate) async fn outside_invite(
    state: &ApiState,
    room: &RoomId,
    user: &UserId,
) -> Result<Option<ruma::OwnedServerName>, ApiError> {
    let store = state.rooms.store();
    let Some(current) = store.membership(room, user).await? else {
        return Ok(None);
    };
    if current.membership != "invite" {
        return Ok(None);
    }
    match store.outside_membership(room, user).await? {
        Some((outside, _)) if outside.event_id == current.event_id => {
            Ok(state.federation.inviting_server(room, user).await?)
        }
        _ => Ok(None),
    }
}

/// Membership changes are limited per sender and per room: each one is a state event every
/// member syncs, and a join may also fan out profile lookups.
pub(crate) fn check_membership_rate(
    state: &ApiState,
    sender: &UserId,
    room: &RoomId,
) -> Result<(), ApiError> {
    use crate::rate_limit::RateKey;
    state.rate_limits.membership.check(RateKey::user(sender))?;
    state.rate_limits.room_membership.check(RateKey::room(room))
}

/// The room a `roomIdOrAlias` path names: itself, or the room an alias points at (a
/// partner's alias is asked of the partner), with the servers it says to join through.
pub(crate) async fn resolve_room(
    state: &ApiState,
    room_id_or_alias: &ruma::RoomOrAliasId,
) -> Result<(ruma::OwnedRoomId, Vec<ruma::OwnedServerName>), ApiError> {
    match <&RoomId>::try_from(room_id_or_alias) {
        Ok(room) => Ok((room.to_owned(), Vec::new())),
        Err(alias) if alias.server_name() != state.server_name => {
            Ok(state.federation.query_alias(alias).await?)
        }
        Err(alias) => {
            crate::client::alias::require_local(state, alias)?;
            Ok((
                state
                    .rooms
                    .store()
                    .alias(alias)
                    .await?
                    .ok_or_else(|| {
                        ApiError::new(
                            StatusCode::NOT_FOUND,
                            ErrorKind::NotFound,
                            "no room has this alias",
                        )
                    })?
                    .0,
                Vec::new(),
            ))
        }
    }
}

/// The target's current membership of the room (`None` if they never had one).
pub(crate) async fn membership_of(
    state: &ApiState,
    room: &RoomId,
    user: &UserId,
) -> Result<Option<String>, ApiError> {
    Ok(state
        .rooms
        .store()
        .membership(room, user)
        .await?
        .map(|m| m.membership))
}

/// 403 `M_FORBIDDEN` with a reason.
pub(crate) fn refuse(why: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, ErrorKind::Forbidden, why)
}

/// Guests join only rooms whose `m.room.guest_access` is `can_join` (spec, "Guest access").
pub(crate) async fn require_guest_access(state: &ApiState, room: &RoomId) -> Result<(), ApiError> {
    let current = state.rooms.current_state(room).await?;
    let access = crate::client::room_access::state_content(
        &state.rooms,
        &current,
        ruma::events::StateEventType::RoomGuestAccess,
        "",
    )
    .await?;
    if access["guest_access"] == "can_join" {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        ErrorKind::Forbidden,
        "this room does not let guests join",
    ))
}

/// After `m.room.guest_access` stopped letting guests in: the local guests who are joined
/// leave, as the spec requires.
pub(crate) async fn remove_guests(state: &ApiState, room: &RoomId) -> Result<(), ApiError> {
    if require_guest_access(state, room).await.is_ok() {
        return Ok(());
    }
    let store = state.rooms.store();
    for member in store.room_members(room, Some("join")).await? {
        if member.user_id.server_name() != state.server_name {
            continue;
        }
        let is_guest = store
            .user(&member.user_id)
            .await?
            .is_some_and(|u| u.is_guest);
        if is_guest {
            let user = &member.user_id;
            if let Err(e) = set_membership(state, room, user, user, "leave", None).await {
                tracing::warn!(%room, %user, error = %e.message, "could not remove a guest");
            }
        }
    }
    Ok(())
}
