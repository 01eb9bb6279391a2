//! One room of a sliding sync response.
//!
//! A room the connection has not sent yet (or sent under another configuration) is sent whole
//! (`initial`): its latest `timeline_limit` events, all the `required_state` it asks for, its
//! name, avatar, heroes and counts. A room sent before is sent only when it has new events: those
//! events, and the `required_state` that changed since (the client reads room state only from
//! `required_state`, so a new name or the user's own leave must come there).

use std::collections::BTreeSet;
use std::sync::Arc;

use hearth_rooms::{Pdu, StateIds};
use hearth_store::Membership;
use ruma::api::client::sync::sync_events::v5::response;
use ruma::events::StateEventType;
use ruma::{OwnedEventId, OwnedMxcUri, OwnedUserId, UInt};

use super::RoomConfig;
use super::connection::RoomSent;
use crate::update::{RoomUpdate, Summary, raws};
use crate::{PaginationToken, SyncError, SyncRequest, SyncToken, Syncer, rooms, unread};

/// What rendering a room needs to know.
pub(super) struct Context<'a> {
    pub(super) viewer: &'a SyncRequest,
    pub(super) membership: &'a Membership,
    pub(super) config: &'a RoomConfig,
    /// What the connection last sent of the room (under this configuration).
    pub(super) sent: Option<&'a RoomSent>,
    pub(super) now: SyncToken,
    /// Events after this position are live (arrived since the client's `pos`).
    pub(super) live_after: Option<i64>,
    pub(super) bump_stamp: i64,
    pub(super) is_dm: bool,
    pub(super) ignored: &'a BTreeSet<OwnedUserId>,
}

/// The room's update (`None` when it has no news), and the event position the client has then
/// seen of it.
pub(super) async fn render(
    syncer: &Syncer,
    cx: &Context<'_>,
    unread: &unread::Unread<'_>,
) -> Result<(Option<response::Room>, i64), SyncError> {
    let membership = cx.membership;
    let mut out = response::Room::new();
    out.bump_stamp = Some(UInt::new_saturating(
        u64::try_from(cx.bump_stamp).unwrap_or(0),
    ));
    out.is_dm = Some(cx.is_dm);
    if matches!(membership.membership.as_str(), "invite" | "knock") {
        if let Some(sent) = cx.sent.filter(|s| s.events >= membership.stream_ordering) {
            return Ok((None, sent.events));
        }
        // Only the stripped state a would-be member may see; the invite or knock is among it.
        // NOTSPEC: the MSC now calls this `stripped_state`, for invites and knocks alike; the
        // format Element X's SDK reads has `invite_state` only, so knocks come there too (the
        // member event's `membership` tells them apart).
        let stripped = rooms::stripped(syncer, membership).await?;
        out.name = stripped
            .iter()
            .find(|e| e["type"] == "m.room.name")
            .and_then(|e| e["content"]["name"].as_str().map(str::to_owned));
        out.invite_state = Some(raws(&stripped)?);
        out.initial = Some(true);
        return Ok((Some(out), membership.stream_ordering));
    }

    let room = &membership.room_id;
    let joined = membership.membership == "join";
    // A room the user left is shown up to the leave.
    let upto = if joined {
        cx.now.events
    } else {
        membership.stream_ordering
    };
    let initial = cx.sent.is_none();
    let after = cx.sent.map_or(0, |s| s.events);
    if !initial && after >= upto {
        return Ok((None, after));
    }
    let joined_at = joined.then_some(membership.stream_ordering);
    let window = rooms::window(
        syncer,
        cx.viewer,
        room,
        (after, upto),
        cx.config.timeline_limit,
        joined_at,
        cx.ignored,
    )
    .await?;
    let timeline = &window.timeline;
    if !initial && timeline.is_empty() {
        // Nothing the user may see happened: nothing to send, but it was looked at.
        return Ok((None, upto));
    }

    // What state the client lacks. With no gap — the window holds every event since the
    // client's last look, all of them visible (sent while the user was in the room) — the
    // state that changed is that of the window's state events, and the state now is the state
    // after its last event: no need to read the state as it was then.
    let no_gap = !initial
        && !window.limited
        && joined
        && membership.stream_ordering <= after
        && !window.stored.is_empty();
    let (state_now, changed) = match no_gap {
        true => {
            let newest = window.stored.last().map(|e| e.event_id.clone());
            let state_now = match newest {
                Some(id) => syncer.rooms.state_after(&id).await?,
                None => rooms::state_at(syncer, room, upto).await?,
            };
            let keys: BTreeSet<(StateEventType, String)> = rooms::parse(syncer, &window.stored)?
                .iter()
                .filter_map(|p| Some((p.kind().to_string().into(), p.state_key()?.to_owned())))
                .collect();
            (state_now, Changed::Keys(keys))
        }
        false => {
            let state_now = rooms::state_at(syncer, room, upto).await?;
            let known = match initial {
                true => Changed::All,
                false => Changed::Since(rooms::state_at(syncer, room, after).await?),
            };
            (state_now, known)
        }
    };
    let lazy: BTreeSet<&str> = timeline.iter().map(|p| p.sender().as_str()).collect();
    let ids: Vec<OwnedEventId> = state_now
        .iter()
        .filter(|((kind, key), id)| {
            let changed = match &changed {
                Changed::All => true,
                Changed::Keys(keys) => keys.contains(&(kind.clone(), key.clone())),
                Changed::Since(known) => known.get(&(kind.clone(), key.clone())) != Some(*id),
            };
            let lazily = *kind == StateEventType::RoomMember && lazy.contains(key.as_str());
            wanted(cx.config, kind, key, cx.viewer.user.as_str(), &lazy) && (changed || lazily)
        })
        .map(|(_, id)| id.clone())
        .collect();
    let pdus = syncer.rooms.load_pdus(&ids).await?;
    let mut state: Vec<Arc<Pdu>> = ids.iter().filter_map(|id| pdus.get(id).cloned()).collect();
    state.sort_by_key(|p| (p.kind().to_string(), p.state_key().map(str::to_owned)));

    // Name, avatar, heroes and counts: whole rooms, and rooms whose membership moved.
    let members_moved = timeline
        .iter()
        .any(|p| *p.kind() == ruma::events::TimelineEventType::RoomMember);
    let summary = match initial || members_moved {
        true => {
            let summary = rooms::summary(syncer, cx.viewer, room).await?;
            describe(syncer, &state_now, &summary, &mut out).await?;
            Some(summary)
        }
        false => None,
    };
    let counts = match joined {
        true => Some(unread.counts(room, cx.now.events, false).await?),
        false => None,
    };
    let live = |live_after: i64| {
        window
            .stored
            .iter()
            .filter(|e| e.stream_ordering > live_after)
            .count()
    };
    let update = RoomUpdate {
        timeline: rooms::client_events(syncer, cx.viewer, timeline, upto).await?,
        limited: window.limited,
        prev_batch: window
            .stored
            .first()
            .map(|e| PaginationToken(e.stream_ordering)),
        num_live: Some(cx.live_after.map_or(0, live)),
        state: syncer.rooms.client_events(&state).await?,
        summary,
        counts,
        ..RoomUpdate::default()
    };
    update.into_v5(&mut out)?;
    if initial {
        out.initial = Some(true);
    }
    Ok((Some(out), upto))
}

/// Which of the room's state the client may not have.
enum Changed {
    /// All of it (the room is sent whole).
    All,
    /// The state under these keys (set by the events since the client's last look).
    Keys(BTreeSet<(StateEventType, String)>),
    /// Whatever differs from this (the state when the client last looked).
    Since(StateIds),
}

/// The room's name, avatar and (for rooms without a name) heroes with their profiles.
async fn describe(
    syncer: &Syncer,
    state: &StateIds,
    summary: &Summary,
    out: &mut response::Room,
) -> Result<(), SyncError> {
    let content = |kind: StateEventType, key: String| {
        let id = state.get(&(kind, key)).cloned();
        async move {
            match id {
                Some(id) => {
                    Ok::<_, SyncError>(syncer.rooms.pdu(&id).await?.map(|p| p.content_json()))
                }
                None => Ok(None),
            }
        }
    };
    if let Some(name) = content(StateEventType::RoomName, String::new()).await? {
        out.name = name["name"]
            .as_str()
            .filter(|n| !n.is_empty())
            .map(str::to_owned);
    }
    out.avatar = match content(StateEventType::RoomAvatar, String::new()).await? {
        Some(avatar) => match avatar["url"].as_str().filter(|u| !u.is_empty()) {
            Some(url) => ruma::JsOption::Some(OwnedMxcUri::from(url)),
            None => ruma::JsOption::Null,
        },
        None => ruma::JsOption::Undefined,
    };
    if !summary.heroes.is_empty() {
        let mut list = Vec::new();
        for hero in &summary.heroes {
            let member = content(StateEventType::RoomMember, hero.to_string()).await?;
            let mut out_hero = response::Hero::new(hero.clone());
            if let Some(member) = member {
                out_hero.name = member["displayname"].as_str().map(str::to_owned);
                out_hero.avatar = member["avatar_url"].as_str().map(OwnedMxcUri::from);
            }
            list.push(out_hero);
        }
        out.heroes = Some(list);
    }
    Ok(())
}

/// Whether a state event is one the room's `required_state` asks for: `*` matches any type or
/// key, `$ME` the user's own key, `$LAZY` (members) the senders of the timeline sent.
fn wanted(
    config: &RoomConfig,
    kind: &StateEventType,
    key: &str,
    me: &str,
    lazy: &BTreeSet<&str>,
) -> bool {
    let kind = kind.to_string();
    config.required_state.iter().any(|(want_kind, want_key)| {
        let kind_matches = want_kind == "*" || *want_kind == kind;
        let key_matches = match want_key.as_str() {
            "*" => true,
            "$ME" => key == me,
            "$LAZY" => kind == "m.room.member" && lazy.contains(key),
            exact => exact == key,
        };
        kind_matches && key_matches
    })
}
