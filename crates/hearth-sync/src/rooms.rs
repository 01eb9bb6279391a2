//! The per-room parts of a sync response: joined, invited and left rooms.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use hearth_rooms::{Pdu, StateIds};
use hearth_store::{Membership, StoredEvent};
use ruma::events::StateEventType;
use ruma::{EventId, OwnedEventId, OwnedUserId, RoomId};
use serde_json::{Value, json};

use crate::update::{RoomUpdate, Summary};
use crate::{PaginationToken, SyncError, SyncRequest, SyncToken, Syncer};

pub(crate) fn parse(syncer: &Syncer, stored: &[StoredEvent]) -> Result<Vec<Arc<Pdu>>, SyncError> {
    Ok(syncer.rooms.parse_stored(stored)?)
}

/// A room's timeline window: its latest events in `(after, upto]` (at most `limit`, oldest
/// first) that the user may see, less those of users they ignore. `joined_at` is the user's
/// current join, when they are joined.
pub(crate) struct Window {
    /// The events as stored (their positions give `prev_batch` and `num_live`).
    pub(crate) stored: Vec<StoredEvent>,
    pub(crate) timeline: Vec<Arc<Pdu>>,
    /// The window held more than `limit` events.
    pub(crate) limited: bool,
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn window(
    syncer: &Syncer,
    request: &SyncRequest,
    room: &RoomId,
    (after, upto): (i64, i64),
    limit: usize,
    joined_at: Option<i64>,
    ignored: &BTreeSet<OwnedUserId>,
) -> Result<Window, SyncError> {
    let fetch = i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1);
    let mut stored = syncer
        .store
        .room_events_backwards(room, after, upto, fetch)
        .await?;
    let limited = stored.len() > limit;
    stored.truncate(limit);
    stored.reverse();
    let stored = visible(syncer, request, stored, joined_at.is_some(), joined_at).await?;
    let mut timeline = parse(syncer, &stored)?;
    if !ignored.is_empty() {
        timeline.retain(|pdu| !crate::ignored::hides(ignored, pdu));
    }
    Ok(Window {
        stored,
        timeline,
        limited,
    })
}

/// The position before the window's first event: where history before it starts.
fn prev_batch(window: &Window, or: i64) -> PaginationToken {
    PaginationToken(window.stored.first().map_or(or, |e| e.stream_ordering))
}

/// The events the user may see under the room's history visibility (and their own membership
/// events, always).
pub(crate) async fn visible(
    syncer: &Syncer,
    request: &SyncRequest,
    stored: Vec<StoredEvent>,
    currently_joined: bool,
    joined_at: Option<i64>,
) -> Result<Vec<StoredEvent>, SyncError> {
    // Everything after the user's (latest, current) join was sent while they were joined.
    if let (true, Some(joined_at)) = (currently_joined, joined_at)
        && stored.iter().all(|e| e.stream_ordering > joined_at)
    {
        return Ok(stored);
    }
    let verdicts = syncer
        .rooms
        .visible_to(&request.user, currently_joined, &stored)
        .await?;
    if verdicts.iter().all(|v| *v) {
        return Ok(stored);
    }
    let pdus = parse(syncer, &stored)?;
    Ok(stored
        .into_iter()
        .zip(verdicts)
        .zip(pdus)
        .filter(|((_, visible), pdu)| {
            *visible || hearth_rooms::is_own_membership(pdu, &request.user)
        })
        .map(|((event, _), _)| event)
        .collect())
}

/// The room's state after the last event at or before `position`.
pub(crate) async fn state_at(
    syncer: &Syncer,
    room: &RoomId,
    position: i64,
) -> Result<StateIds, SyncError> {
    match syncer
        .store
        .room_events_backwards(room, 0, position, 1)
        .await?
        .first()
    {
        Some(last) => Ok(syncer.rooms.state_after(&last.event_id).await?),
        None => Ok(StateIds::new()),
    }
}

/// Client-format events, with `unsigned.transaction_id` on the requesting device's own events
/// and the aggregations of their children up to `upto` (the position the response reaches:
/// later children reach the client as events of their own) bundled.
pub(crate) async fn client_events(
    syncer: &Syncer,
    request: &SyncRequest,
    pdus: &[Arc<Pdu>],
    upto: i64,
) -> Result<Vec<Value>, SyncError> {
    let own: Vec<OwnedEventId> = pdus
        .iter()
        .filter(|p| p.sender() == request.user)
        .map(|p| p.owned_event_id().clone())
        .collect();
    let txns: HashMap<OwnedEventId, String> = syncer
        .store
        .transaction_ids_of(&request.user, &request.device, &own)
        .await?
        .into_iter()
        .collect();
    let reader = hearth_rooms::Reader {
        user: &request.user,
        upto,
    };
    let mut events = syncer.rooms.client_events_for(reader, pdus).await?;
    for (event, pdu) in events.iter_mut().zip(pdus) {
        if let Some(txn) = txns.get(pdu.owned_event_id()) {
            event["unsigned"]["transaction_id"] = txn.clone().into();
        }
    }
    Ok(events)
}

/// What a lazy-loading sync must send of a room's members: those of the timeline's senders,
/// the syncing user's own, and the heroes of the summary it carries.
struct Wanted<'a> {
    members: BTreeSet<&'a str>,
    /// Record what is sent (joined rooms), to leave it out next time; for rooms whose record
    /// is not kept (left rooms), everything wanted is sent.
    record_at: Option<i64>,
}

/// State events to send: `state` minus what the client has (`known`: the state at its token;
/// `None` when it has nothing) and minus what the timeline carries (the spec's `state` ends
/// where the timeline starts; the create event's stored "state before" holds the create event
/// itself).
///
/// Lazily loaded members follow the spec's rules instead: the `wanted` ones, and those whose
/// membership changed in a gap, less those the device was already sent (unless the filter
/// asks for redundant members).
async fn state_events(
    syncer: &Syncer,
    request: &SyncRequest,
    room: &RoomId,
    state: &StateIds,
    known: Option<&StateIds>,
    timeline: &[Arc<Pdu>],
    wanted: &Wanted<'_>,
) -> Result<Vec<Value>, SyncError> {
    let filter = &request.filter;
    let dedupe = !filter.include_redundant_members && wanted.record_at.is_some();
    let in_timeline: BTreeSet<&EventId> = timeline.iter().map(|p| p.event_id()).collect();
    let mut members = Vec::new();
    let ids: Vec<OwnedEventId> = state
        .iter()
        .filter(|(_, id)| !in_timeline.contains(&***id))
        .filter(|(state_key, id)| {
            let changed = known.is_none_or(|k| k.get(*state_key) != Some(*id));
            let (kind, key) = state_key;
            if !filter.lazy_load_members || *kind != StateEventType::RoomMember {
                return changed;
            }
            let needed = wanted.members.contains(key.as_str()) || (known.is_some() && changed);
            let send = needed && !(dedupe && syncer.sent_members.known(request, room, key, id));
            if send {
                members.push((key.as_str(), (*id).clone()));
            }
            send
        })
        .map(|(_, id)| id.clone())
        .collect();
    if let Some(at) = wanted.record_at {
        for (member, id) in members {
            syncer.sent_members.record(request, room, member, id, at);
        }
        if filter.lazy_load_members {
            for pdu in timeline.iter().filter(|p| p.membership().is_some()) {
                if let Some(member) = pdu.state_key() {
                    let id = pdu.owned_event_id().clone();
                    syncer.sent_members.record(request, room, member, id, at);
                }
            }
        }
    }
    let pdus = syncer.rooms.load_pdus(&ids).await?;
    let mut events: Vec<Arc<Pdu>> = ids.iter().filter_map(|id| pdus.get(id).cloned()).collect();
    events.sort_by_key(|p| (p.kind().to_string(), p.state_key().map(str::to_owned)));
    Ok(syncer.rooms.client_events(&events).await?)
}

/// The room summary. As the spec's summary rules say: heroes only when the room has neither a
/// name nor a canonical alias; the first five joined or invited members by stream order,
/// never the user; when there are none, those who left or were banned.
pub(crate) async fn summary(
    syncer: &Syncer,
    request: &SyncRequest,
    room: &RoomId,
) -> Result<Summary, SyncError> {
    let mut members = syncer.store.room_members(room, None).await?;
    members.sort_by_key(|m| m.stream_ordering);
    let count = |m: &str| members.iter().filter(|x| x.membership == m).count() as u64;
    let mut summary = Summary {
        joined: count("join"),
        invited: count("invite"),
        heroes: Vec::new(),
    };
    if named(syncer, room).await? {
        return Ok(summary);
    }
    let pick = |memberships: &[&str]| -> Vec<OwnedUserId> {
        members
            .iter()
            .filter(|m| memberships.contains(&m.membership.as_str()) && m.user_id != request.user)
            .take(5)
            .map(|m| m.user_id.clone())
            .collect()
    };
    summary.heroes = pick(&["join", "invite"]);
    if summary.heroes.is_empty() {
        summary.heroes = pick(&["leave", "ban"]);
    }
    Ok(summary)
}

/// Whether the room has a non-empty `m.room.name` or `m.room.canonical_alias`.
async fn named(syncer: &Syncer, room: &RoomId) -> Result<bool, SyncError> {
    let state = syncer.rooms.current_state(room).await?;
    let ids: Vec<OwnedEventId> = [StateEventType::RoomName, StateEventType::RoomCanonicalAlias]
        .into_iter()
        .filter_map(|kind| state.get(&(kind, String::new())).cloned())
        .collect();
    let pdus = syncer.rooms.load_pdus(&ids).await?;
    Ok(pdus.values().any(|pdu| {
        let content = pdu.content_json();
        let set = |key: &str| content[key].as_str().is_some_and(|v| !v.is_empty());
        set("name") || set("alias")
    }))
}

/// The room's receipts that changed in `(since, upto]` as one `m.receipt` event; others'
/// private receipts are left out.
pub(crate) async fn receipts(
    syncer: &Syncer,
    request: &SyncRequest,
    room: &RoomId,
    since: i64,
    upto: i64,
) -> Result<Option<Value>, SyncError> {
    if since >= upto {
        return Ok(None);
    }
    let mut content = serde_json::Map::new();
    for receipt in syncer.store.receipts_between(room, since, upto).await? {
        if receipt.receipt_type == "m.read.private" && receipt.user_id != request.user {
            continue;
        }
        let mut entry = json!({ "ts": receipt.ts });
        if let Some(thread) = &receipt.thread_id {
            entry["thread_id"] = thread.clone().into();
        }
        let by_type = content
            .entry(receipt.event_id.to_string())
            .or_insert_with(|| json!({}));
        by_type[&receipt.receipt_type][receipt.user_id.as_str()] = entry;
    }
    Ok((!content.is_empty()).then(|| json!({ "type": "m.receipt", "content": content })))
}

/// A joined room: `None` when nothing changed since the token. `account_data` is the room's
/// account data that changed; the caller adds the counts.
pub(crate) async fn joined(
    syncer: &Syncer,
    request: &SyncRequest,
    membership: &Membership,
    now: SyncToken,
    account_data: Vec<Value>,
    ignored: &BTreeSet<OwnedUserId>,
) -> Result<Option<RoomUpdate>, SyncError> {
    let room = &membership.room_id;
    let limit = request.filter.timeline_limit;
    // A room's history is sent from its end on an initial sync and when the user has just
    // joined; its state is sent whole then, and on full_state (whose timeline still starts at
    // the token, as the spec says).
    let fresh = match request.since {
        None => true,
        Some(since) if membership.stream_ordering > since.events => {
            let before = syncer.rooms.state_before(&membership.event_id).await?;
            match before.get(&(StateEventType::RoomMember, request.user.to_string())) {
                Some(id) => {
                    syncer
                        .rooms
                        .pdu(id)
                        .await?
                        .and_then(|p| p.membership())
                        .as_deref()
                        != Some("join")
                }
                None => true,
            }
        }
        Some(_) => false,
    };
    let whole = fresh || request.full_state;
    let after = if fresh {
        0
    } else {
        request.since.map_or(0, |s| s.events)
    };
    let since_typing = request.since.map_or(0, |s| s.typing);
    let typing = syncer.typing.changed_since(room, since_typing);
    let since_receipts = if fresh {
        0
    } else {
        request.since.map_or(0, |s| s.receipts)
    };
    let receipts = receipts(syncer, request, room, since_receipts, now.receipts).await?;
    let window = window(
        syncer,
        request,
        room,
        (after, now.events),
        limit,
        Some(membership.stream_ordering),
        ignored,
    )
    .await?;
    let quiet = typing.is_none() && account_data.is_empty() && receipts.is_none();
    if !whole && quiet && window.stored.is_empty() {
        return Ok(None);
    }
    let timeline = &window.timeline;

    // The summary only changes with membership: send it when the client may not have it yet or
    // a member event arrives (the spec lets servers omit unchanged summaries).
    let membership_changed = whole
        || window.limited
        || timeline
            .iter()
            .any(|p| *p.kind() == ruma::events::TimelineEventType::RoomMember);
    let summary = match membership_changed {
        true => Some(summary(syncer, request, room).await?),
        false => None,
    };
    let lazy = request.filter.lazy_load_members;
    let wanted = Wanted {
        members: timeline
            .iter()
            .map(|p| p.sender().as_str())
            .chain(std::iter::once(request.user.as_str()))
            .chain(
                summary
                    .iter()
                    .flat_map(|s| s.heroes.iter().map(|h| h.as_str())),
            )
            .collect(),
        record_at: Some(now.events),
    };
    let state = match (whole, window.limited, timeline.first()) {
        (true, _, Some(first)) => {
            let before = syncer.rooms.state_before(first.event_id()).await?;
            state_events(syncer, request, room, &before, None, timeline, &wanted).await?
        }
        (true, _, None) => {
            let at = state_at(syncer, room, now.events).await?;
            state_events(syncer, request, room, &at, None, timeline, &wanted).await?
        }
        (false, true, Some(first)) => {
            let known = state_at(syncer, room, after).await?;
            let before = syncer.rooms.state_before(first.event_id()).await?;
            state_events(
                syncer,
                request,
                room,
                &before,
                Some(&known),
                timeline,
                &wanted,
            )
            .await?
        }
        // No gap: the client has the state, but a lazy-loading one may lack the members of
        // the timeline's senders.
        (false, false, Some(first)) if lazy => {
            let before = syncer.rooms.state_before(first.event_id()).await?;
            state_events(
                syncer,
                request,
                room,
                &before,
                Some(&before),
                timeline,
                &wanted,
            )
            .await?
        }
        (false, _, _) => Vec::new(),
    };
    Ok(Some(RoomUpdate {
        timeline: client_events(syncer, request, timeline, now.events).await?,
        limited: window.limited,
        // With nothing in the timeline, history goes back from where the client's token left
        // off.
        prev_batch: Some(prev_batch(&window, after + 1)),
        num_live: None,
        state,
        typing,
        receipts,
        account_data,
        summary,
        counts: None,
    }))
}

/// The stripped state a would-be member may see, with their membership event last. For an
/// invite to a room we are not in, the state the inviting server sent with it.
pub(crate) async fn stripped(
    syncer: &Syncer,
    membership: &Membership,
) -> Result<Vec<Value>, SyncError> {
    if let Some((outside, _)) = syncer
        .store
        .outside_membership(&membership.room_id, &membership.user_id)
        .await?
        && outside.event_id == membership.event_id
    {
        return Ok(serde_json::from_str(&outside.stripped_state).unwrap_or_default());
    }
    let state = syncer.rooms.state_before(&membership.event_id).await?;
    let mut ids: Vec<OwnedEventId> = state
        .iter()
        .filter(|((kind, key), _)| {
            key.is_empty()
                && hearth_rooms::STRIPPED_STATE_TYPES.contains(&kind.to_string().as_str())
        })
        .map(|(_, id)| id.clone())
        .collect();
    ids.push(membership.event_id.clone());
    let pdus = syncer.rooms.load_pdus(&ids).await?;
    Ok(ids
        .iter()
        .filter_map(|id| pdus.get(id))
        .map(|p| p.to_stripped())
        .collect())
}

/// The user's leave of a room we are not in (a declined invite), when that is `membership`.
async fn outside_leave(
    syncer: &Syncer,
    membership: &Membership,
) -> Result<Option<Arc<Pdu>>, SyncError> {
    let Some((outside, _)) = syncer
        .store
        .outside_membership(&membership.room_id, &membership.user_id)
        .await?
    else {
        return Ok(None);
    };
    if outside.event_id != membership.event_id {
        return Ok(None);
    }
    let Some(rules) = outside.room_version.rules() else {
        return Ok(None);
    };
    Ok(Some(Arc::new(Pdu::from_json_str(
        &outside.event_json,
        &rules,
    )?)))
}

/// A room the user left (or was removed from): the timeline up to and including the leave.
pub(crate) async fn left(
    syncer: &Syncer,
    request: &SyncRequest,
    membership: &Membership,
    ignored: &BTreeSet<OwnedUserId>,
) -> Result<RoomUpdate, SyncError> {
    let room = &membership.room_id;
    let after = request.since.map_or(0, |s| s.events);
    let upto = membership.stream_ordering;
    if let Some(leave) = outside_leave(syncer, membership).await? {
        // A declined invite to a room we are not in: the leave is all there is to show.
        return Ok(RoomUpdate {
            timeline: client_events(syncer, request, &[leave], upto).await?,
            ..RoomUpdate::default()
        });
    }
    let limit = request.filter.timeline_limit;
    let window = window(syncer, request, room, (after, upto), limit, None, ignored).await?;
    let timeline = &window.timeline;
    let state = match timeline.first() {
        Some(first) if window.limited || request.since.is_none() => {
            let known = match request.since {
                Some(s) => Some(state_at(syncer, room, s.events).await?),
                None => None,
            };
            let before = syncer.rooms.state_before(first.event_id()).await?;
            let wanted = Wanted {
                members: timeline
                    .iter()
                    .map(|p| p.sender().as_str())
                    .chain(std::iter::once(request.user.as_str()))
                    .collect(),
                record_at: None,
            };
            state_events(
                syncer,
                request,
                room,
                &before,
                known.as_ref(),
                timeline,
                &wanted,
            )
            .await?
        }
        _ => Vec::new(),
    };
    Ok(RoomUpdate {
        timeline: client_events(syncer, request, timeline, upto).await?,
        limited: window.limited,
        prev_batch: Some(prev_batch(&window, upto)),
        state,
        ..RoomUpdate::default()
    })
}
