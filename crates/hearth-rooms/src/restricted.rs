//! Restricted joins (room versions 8 and later): Hearth vouches for its own users' joins.
//!
//! In a `restricted` (or `knock_restricted`) room, a join by someone who is neither invited nor
//! joined is allowed by the auth rules when its `join_authorised_via_users_server` names a
//! member who may invite. The auth rules cannot check the room's `allow` conditions (they need
//! other rooms' state), so the resident server that signs the join must: Hearth checks them
//! itself before it signs, whichever endpoint the join comes through, and names the authorising
//! member itself. A value the client put in the content is never trusted.

use std::sync::Arc;

use ruma::events::StateEventType;
use ruma::room_version_rules::AuthorizationRules;
use ruma::{OwnedRoomId, OwnedUserId, RoomId, UserId};
use serde_json::Value;

use crate::{Pdu, Power, RoomError, Rooms};

const AUTHORISER: &str = "join_authorised_via_users_server";

/// What a join needs before it is built.
pub(crate) enum Join {
    /// The join rule or the user's membership makes the authoriser unnecessary.
    Plain,
    /// The allow conditions hold; these joined local members may vouch (best first).
    Authorisers(Vec<OwnedUserId>),
}

/// The rooms a restricted join rule's `allow` list names.
fn allowed_rooms(join_rules: &Value) -> Vec<OwnedRoomId> {
    join_rules
        .get("allow")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|entry| entry.get("type").and_then(Value::as_str) == Some("m.room_membership"))
        .filter_map(|entry| entry.get("room_id").and_then(Value::as_str))
        .filter_map(|id| OwnedRoomId::try_from(id).ok())
        .collect()
}

/// Decide a local user's join. `get` reads the room's state as the join would see it.
pub(crate) async fn check_join(
    rooms: &Rooms,
    rules: &AuthorizationRules,
    this_room: &RoomId,
    user: &UserId,
    get: impl Fn(&(StateEventType, String)) -> Option<Arc<Pdu>>,
) -> Result<Join, RoomError> {
    let join_rules = get(&(StateEventType::RoomJoinRules, String::new()))
        .map(|p| p.content_json())
        .unwrap_or(Value::Null);
    let rule = join_rules.get("join_rule").and_then(Value::as_str);
    let restricted = match rule {
        Some("restricted") => rules.restricted_join_rule,
        Some("knock_restricted") => rules.knock_restricted_join_rule,
        _ => false,
    };
    if !restricted {
        return Ok(Join::Plain);
    }
    let membership_of = |user: &UserId| {
        get(&(StateEventType::RoomMember, user.to_string())).and_then(|p| p.membership())
    };
    if matches!(membership_of(user).as_deref(), Some("join" | "invite")) {
        return Ok(Join::Plain);
    }
    let mut entitled = false;
    for room in allowed_rooms(&join_rules) {
        let membership = rooms.store().membership(&room, user).await?;
        if membership.is_some_and(|m| m.membership == "join") {
            entitled = true;
            break;
        }
    }
    if !entitled {
        return Err(RoomError::Forbidden(match rule {
            Some("knock_restricted") => {
                "this room only lets in members of the rooms it names; you may knock".into()
            }
            _ => "this room only lets in members of the rooms it names, or those invited".into(),
        }));
    }
    let power = Power::from_state(rules, &get);
    let needed = power.action("invite");
    let server = rooms.key().server_name();
    let mut authorisers: Vec<(i64, OwnedUserId)> = rooms
        .store()
        .room_members(this_room, Some("join"))
        .await?
        .into_iter()
        .map(|m| m.user_id)
        .filter(|member| member.server_name() == server)
        // The stored membership may lag the batch being built: the state decides.
        .filter(|member| membership_of(member).as_deref() == Some("join"))
        .map(|member| (power.user(&member), member))
        .filter(|(level, _)| *level >= needed)
        .collect();
    if authorisers.is_empty() {
        return Err(RoomError::Forbidden(
            "no member of this server may invite, so none can let you in".into(),
        ));
    }
    // The most powerful first: the least likely to lose the right before others see the join.
    authorisers.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    Ok(Join::Authorisers(
        authorisers.into_iter().map(|(_, u)| u).collect(),
    ))
}

/// Put Hearth's choice of authoriser into a join's content, replacing whatever was there.
pub(crate) fn vouch(content: &mut Value, join: &Join) {
    let Some(object) = content.as_object_mut() else {
        return;
    };
    object.remove(AUTHORISER);
    if let Join::Authorisers(users) = join
        && let Some(first) = users.first()
    {
        object.insert(AUTHORISER.into(), first.as_str().into());
    }
}
