//! Simplified sliding sync (MSC4186), in the wire format of ruma's `sync_events::v5` types,
//! which matrix-sdk 0.18 (Element X) speaks.
//!
//! A request names lists (ranges over the user's rooms in recency order, with filters) and
//! room subscriptions, each with the state and timeline it wants per room, and extensions. The
//! connection (`connection.rs`) remembers what it sent, so an answer after `pos` carries only
//! rooms with news and what changed in them. Per room, see `room.rs`.
//!
//! NOTSPEC: the MSC text has since renamed parts of the format (`timeline_events`,
//! `stripped_state`, a single `range`, `required_state` as include/exclude). Hearth follows
//! the types Element X's SDK sends (`timeline`, `invite_state`, `ranges`, `[type, key]` pairs).

pub(crate) mod connection;
pub mod extras;
mod room;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use hearth_store::Membership;
use ruma::api::client::sync::sync_events::v5;
use ruma::api::client::sync::sync_events::v5::request::ExtensionRoomConfig;
use ruma::events::StateEventType;
use ruma::serde::Raw;
use ruma::{DeviceId, OwnedRoomId, UInt, UserId};
use tokio::time::Instant;

use crate::{SyncError, SyncToken, Syncer, ignored, push_rules, unread};
use connection::{ConnectionState, RoomSent, UnknownPos};
use extras::{ExtraFilters, RequestExtras};

/// Most lists one request may name.
pub const MAX_LISTS: usize = 100;
/// Most room subscriptions one request may carry.
pub const MAX_SUBSCRIPTIONS: usize = 1_000;
/// Most `required_state` entries per list or subscription.
pub const MAX_REQUIRED_STATE: usize = 1_000;
/// Most rooms the ranges of all lists may select in one response.
pub const MAX_ROOMS_PER_RESPONSE: usize = 1_000;
/// A larger `timeline_limit` is taken as this.
pub const MAX_TIMELINE_LIMIT: usize = 100;
/// The longest long-poll.
const MAX_TIMEOUT: Duration = Duration::from_secs(120);

/// Why a sliding sync was refused.
#[derive(Debug, thiserror::Error)]
pub enum SlidingError {
    /// The `pos` is not one of this connection's (or it expired): start over without it.
    #[error("unknown or expired pos: start the connection again without one")]
    UnknownPos,
    /// A request the server will not serve (400 `M_INVALID_PARAM`).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Sync(#[from] SyncError),
}

/// What a room is asked for: the union of its lists' and subscription's wishes.
#[derive(Debug, Clone, Default)]
pub(crate) struct RoomConfig {
    pub(crate) required_state: BTreeSet<(String, String)>,
    pub(crate) timeline_limit: usize,
}

impl RoomConfig {
    fn add(&mut self, required_state: &[(StateEventType, String)], timeline_limit: UInt) {
        for (kind, key) in required_state {
            self.required_state.insert((kind.to_string(), key.clone()));
        }
        let limit = usize::try_from(u64::from(timeline_limit)).unwrap_or(usize::MAX);
        self.timeline_limit = self.timeline_limit.max(limit.min(MAX_TIMELINE_LIMIT));
    }

    /// A fingerprint of its `required_state`: a room whose required state changes is sent
    /// whole again.
    fn fingerprint(&self) -> u64 {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.required_state.hash(&mut hasher);
        hasher.finish()
    }
}

/// What a room is, as list filters see it.
#[derive(Debug, Default)]
struct RoomFacts {
    encrypted: bool,
    room_type: Option<String>,
}

impl Syncer {
    /// Answer a sliding sync request: at once for a new connection (no `pos`) or when there is
    /// news; otherwise after the first change, or at `timeout`. `extras` are the fields of the
    /// request that ruma's types leave out.
    pub async fn sliding_sync(
        &self,
        user: &UserId,
        device: &DeviceId,
        request: &v5::Request,
        extras: &RequestExtras,
    ) -> Result<v5::Response, SlidingError> {
        validate(request)?;
        let key = (
            user.to_owned(),
            device.to_owned(),
            request.conn_id.clone().unwrap_or_default(),
        );
        let previous = self
            .connections
            .resume(&key, request.pos.as_deref())
            .map_err(|UnknownPos| SlidingError::UnknownPos)?;
        let timeout = match request.pos {
            // The MSC: a request without pos is answered at once.
            None => Duration::ZERO,
            Some(_) => request.timeout.unwrap_or_default().min(MAX_TIMEOUT),
        };
        let deadline = Instant::now() + timeout;
        // Registered before reading, so news between the read and the wait is not missed.
        let mut waiter = self.store.notifier().waiter();
        waiter.watch_device(user, device);
        let _online = self.presence.sync_started(user, &request.set_presence);
        push_rules::ensure_stored(&self.store, user)
            .await
            .map_err(SyncError::from)?;
        loop {
            // Any of the user's rooms may enter a list; a membership change after this read
            // is news about the user, and the next turn watches the new room.
            let memberships = self
                .store
                .memberships_of(user)
                .await
                .map_err(SyncError::from)?;
            waiter.watch_rooms(memberships.iter().map(|m| &*m.room_id));
            let (mut response, state, news) = self
                .sliding_pass(user, device, request, extras, &previous)
                .await?;
            let waited_enough = Instant::now() >= deadline;
            if news || request.pos.is_none() || waited_enough {
                response.pos = self.connections.save(key, request.pos.as_deref(), state);
                response.txn_id = request.txn_id.clone();
                return Ok(response);
            }
            if tokio::time::timeout_at(deadline, waiter.woken())
                .await
                .is_err()
            {
                // Timed out: one last pass, then answer whatever it finds.
                continue;
            }
        }
    }

    /// One look at what changed since `previous`: the response (without its `pos`), the
    /// connection state it leaves, and whether it carries news.
    async fn sliding_pass(
        &self,
        user: &UserId,
        device: &DeviceId,
        request: &v5::Request,
        extras: &RequestExtras,
        previous: &ConnectionState,
    ) -> Result<(v5::Response, ConnectionState, bool), SlidingError> {
        let (memberships, events) = self.consistent_memberships(user).await?;
        let now = SyncToken {
            events,
            typing: self.typing.serial(),
            account_data: self
                .store
                .max_account_data_stream()
                .await
                .map_err(SyncError::from)?,
            receipts: self
                .store
                .max_receipt_stream()
                .await
                .map_err(SyncError::from)?,
            presence: self.presence.serial(),
            to_device: self.store.max_to_device_stream(),
            device_lists: self.store.max_device_list_stream(),
        };
        let resumed = request.pos.is_some();
        // The rooms the lists range over: those the user is in, invited to or knocking on, and
        // those they just left that the client was shown (so that it learns of the leave).
        let candidates: Vec<&Membership> = memberships
            .iter()
            .filter(|m| m.stream_ordering <= now.events)
            .filter(|m| match m.membership.as_str() {
                "join" | "invite" | "knock" => true,
                "leave" | "ban" => previous
                    .rooms
                    .get(&m.room_id)
                    .is_some_and(|sent| sent.events < m.stream_ordering),
                _ => false,
            })
            .collect();
        let ids: Vec<OwnedRoomId> = candidates.iter().map(|m| m.room_id.clone()).collect();
        let by_room: HashMap<&ruma::RoomId, &Membership> =
            candidates.iter().map(|m| (&*m.room_id, *m)).collect();
        let bumps = self
            .store
            .bump_stamps(&ids)
            .await
            .map_err(SyncError::from)?;
        // A room's recency: its latest bump event, or the user's own membership change if that
        // is newer (an invite, a join, a leave).
        let recency = |m: &Membership| {
            bumps
                .get(&m.room_id)
                .copied()
                .unwrap_or(0)
                .max(m.stream_ordering)
        };
        let direct = self.direct_rooms(user).await?;
        let ignored = ignored::ignored_users(&self.store, user)
            .await
            .map_err(SyncError::from)?;
        let needs_facts = request.lists.values().any(|l| {
            l.filters.as_ref().is_some_and(|f| {
                f.is_encrypted.is_some() || !f.room_types.is_empty() || !f.not_room_types.is_empty()
            })
        });
        let facts = match needs_facts {
            true => self.room_facts(&ids).await?,
            false => HashMap::new(),
        };
        let needs_tags = request
            .lists
            .keys()
            .any(|name| extras.filters(name).is_some_and(ExtraFilters::uses_tags));
        let tags = match needs_tags {
            true => self.room_tags(user, &ids).await?,
            false => HashMap::new(),
        };
        let joined: HashSet<&ruma::RoomId> = memberships
            .iter()
            .filter(|m| m.membership == "join")
            .map(|m| &*m.room_id)
            .collect();

        let mut response = v5::Response::new(String::new());
        let mut selected: BTreeMap<OwnedRoomId, RoomConfig> = BTreeMap::new();
        let mut in_list: BTreeMap<&str, BTreeSet<OwnedRoomId>> = BTreeMap::new();
        let mut counts = HashMap::new();
        for (name, list) in &request.lists {
            let extra = extras.filters(name);
            let children = match extra.and_then(|f| f.spaces.as_ref()) {
                Some(spaces) => Some(self.space_children(spaces, &joined).await?),
                None => None,
            };
            let filter = Filter {
                filters: list.filters.as_ref(),
                extra,
                children: children.as_ref(),
            };
            let mut rooms: Vec<&&Membership> = candidates
                .iter()
                .filter(|m| {
                    filter.passes(
                        m,
                        &direct,
                        facts.get(&m.room_id),
                        tags.get(&m.room_id).unwrap_or(&NO_TAGS),
                    )
                })
                .collect();
            rooms.sort_by(|a, b| recency(b).cmp(&recency(a)).then(a.room_id.cmp(&b.room_id)));
            let count = rooms.len();
            for (start, end) in &list.ranges {
                let start = usize::try_from(u64::from(*start)).unwrap_or(usize::MAX);
                let end = usize::try_from(u64::from(*end)).unwrap_or(usize::MAX);
                for m in rooms
                    .iter()
                    .skip(start)
                    .take(end.saturating_sub(start).saturating_add(1))
                {
                    if selected.len() >= MAX_ROOMS_PER_RESPONSE
                        && !selected.contains_key(&m.room_id)
                    {
                        break;
                    }
                    selected.entry(m.room_id.clone()).or_default().add(
                        &list.room_details.required_state,
                        list.room_details.timeline_limit,
                    );
                    in_list
                        .entry(name.as_str())
                        .or_default()
                        .insert(m.room_id.clone());
                }
            }
            let mut out = v5::response::List::default();
            out.count = UInt::try_from(count).unwrap_or(UInt::MAX);
            response.lists.insert(name.clone(), out);
            counts.insert(name.clone(), count as u64);
        }
        let mut subscribed = BTreeSet::new();
        for (room, subscription) in &request.room_subscriptions {
            // Only rooms the user is (or was just) in; others are not theirs to read.
            if by_room.contains_key(&**room) && !extras.unsubscribe_rooms.contains(room) {
                selected
                    .entry(room.clone())
                    .or_default()
                    .add(&subscription.required_state, subscription.timeline_limit);
                subscribed.insert(room.clone());
            }
        }

        let mut state = ConnectionState {
            token: now,
            rooms: previous.rooms.clone(),
            counts,
            responses: previous.responses + 1,
        };
        let viewer = crate::SyncRequest {
            user: user.to_owned(),
            device: device.to_owned(),
            since: None,
            timeout: Duration::ZERO,
            full_state: false,
            filter: crate::SyncFilter::default(),
            set_presence: request.set_presence.clone(),
        };
        let unread = unread::Unread::new(self, user, Arc::new(ignored.clone()));
        let live_after = resumed.then_some(previous.token.events);
        for (room_id, config) in &selected {
            let Some(membership) = by_room.get(&**room_id).copied() else {
                continue;
            };
            let fingerprint = config.fingerprint();
            // A room whose timeline limit grew is sent whole again, with the latest events up to
            // the new limit (the client may not have them all); one whose limit shrank is not.
            // NOTSPEC: the MSC marks such a resend `expanded_timeline`, which ruma's types (what
            // Element X reads) do not carry; it is marked `initial`, which the MSC allows ("the
            // client should replace all room data with what is returned").
            let sent = previous
                .rooms
                .get(room_id)
                .filter(|s| s.config == fingerprint && s.timeline_limit >= config.timeline_limit);
            let context = room::Context {
                viewer: &viewer,
                membership,
                config,
                sent,
                now,
                live_after,
                bump_stamp: bumps.get(room_id).copied().unwrap_or(0),
                is_dm: direct.contains(room_id),
                ignored: &ignored,
            };
            let (update, upto) = room::render(self, &context, &unread).await?;
            let sent_at = match (&update, sent) {
                (None, Some(sent)) => sent.sent_at,
                _ => state.responses,
            };
            if let Some(update) = update {
                response.rooms.insert(room_id.clone(), update);
            }
            state.rooms.insert(
                room_id.clone(),
                RoomSent {
                    events: upto,
                    config: fingerprint,
                    timeline_limit: config.timeline_limit,
                    sent_at,
                },
            );
        }
        // Unsubscribed rooms that no list selects are forgotten: a new subscription sends them
        // whole.
        for room in &extras.unsubscribe_rooms {
            if !selected.contains_key(room) {
                state.rooms.remove(room);
            }
        }
        state.trim();

        let scope = |lists: &Option<Vec<String>>, rooms: &Option<Vec<ExtensionRoomConfig>>| {
            extension_scope(lists, rooms, &in_list, &subscribed)
        };
        let mut news =
            !response.rooms.is_empty() || previous_counts_differ(previous, &state) || !resumed;
        let extensions = &request.extensions;
        if extensions.to_device.enabled == Some(true) {
            let since = extensions
                .to_device
                .since
                .as_deref()
                .and_then(to_device_since);
            let (events, seen) = self
                .e2ee
                .to_device_for(
                    user,
                    device,
                    since,
                    now.to_device,
                    extensions
                        .to_device
                        .limit
                        .map(|l| usize::try_from(u64::from(l)).unwrap_or(usize::MAX)),
                )
                .await
                .map_err(SyncError::from)?;
            news |= !events.is_empty();
            let mut out = v5::response::ToDevice::default();
            out.next_batch = seen.to_string();
            out.events = events.into_iter().map(Raw::from_json).collect();
            response.extensions.to_device = Some(out);
        }
        if extensions.e2ee.enabled == Some(true) {
            let changes = if resumed {
                self.e2ee
                    .device_list_changes(
                        user,
                        (previous.token.events, previous.token.device_lists),
                        (now.events, now.device_lists),
                    )
                    .await
                    .map_err(SyncError::from)?
            } else {
                hearth_e2ee::DeviceListChanges::default()
            };
            news |= !changes.is_empty();
            let e2ee = &mut response.extensions.e2ee;
            e2ee.device_lists.changed = changes.changed;
            e2ee.device_lists.left = changes.left;
            e2ee.device_one_time_keys_count = self
                .e2ee
                .one_time_key_counts(user, device)
                .await
                .map_err(SyncError::from)?;
            e2ee.device_unused_fallback_key_types = Some(
                self.e2ee
                    .unused_fallback_key_types(user, device)
                    .await
                    .map_err(SyncError::from)?,
            );
        }
        if extensions.account_data.enabled == Some(true) {
            let rooms = scope(
                &extensions.account_data.lists,
                &extensions.account_data.rooms,
            );
            let since = if resumed {
                previous.token.account_data
            } else {
                0
            };
            for row in self
                .store
                .account_data_since(user, since)
                .await
                .map_err(SyncError::from)?
            {
                if row.stream_ordering > now.account_data {
                    continue;
                }
                let event = serde_json::json!({
                    "type": row.data_type,
                    "content": serde_json::from_str::<serde_json::Value>(&row.content)
                        .unwrap_or(serde_json::Value::Null),
                });
                let raw = serde_json::value::to_raw_value(&event).map_err(|e| {
                    SlidingError::Sync(SyncError::Store(hearth_store::StoreError::Corrupt(
                        e.to_string(),
                    )))
                })?;
                match row.room_id {
                    Some(room) if rooms.contains(&room) => {
                        response
                            .extensions
                            .account_data
                            .rooms
                            .entry(room)
                            .or_default()
                            .push(Raw::from_json(raw));
                    }
                    Some(_) => {}
                    None => response
                        .extensions
                        .account_data
                        .global
                        .push(Raw::from_json(raw)),
                }
            }
            news |= !response.extensions.account_data.is_empty();
        }
        if extensions.receipts.enabled == Some(true) {
            for room in scope(&extensions.receipts.lists, &extensions.receipts.rooms) {
                // A room the client is just being sent whole gets its receipts whole.
                let since = match previous.rooms.get(&room) {
                    Some(_) if resumed => previous.token.receipts,
                    _ => 0,
                };
                if let Some(event) =
                    crate::rooms::receipts(self, &viewer, &room, since, now.receipts).await?
                {
                    response
                        .extensions
                        .receipts
                        .rooms
                        .insert(room, raw_of(&event)?);
                }
            }
            news |= !response.extensions.receipts.is_empty();
        }
        if extensions.typing.enabled == Some(true) {
            for room in scope(&extensions.typing.lists, &extensions.typing.rooms) {
                let since = match previous.rooms.get(&room) {
                    Some(_) if resumed => previous.token.typing,
                    _ => 0,
                };
                if let Some(users) = self.typing.changed_since(&room, since) {
                    let event = serde_json::json!({
                        "type": "m.typing",
                        "content": { "user_ids": users },
                    });
                    response
                        .extensions
                        .typing
                        .rooms
                        .insert(room, raw_of(&event)?);
                }
            }
            news |= !response.extensions.typing.is_empty();
        }
        Ok((response, state, news))
    }

    /// The rooms `m.direct` names for the user.
    async fn direct_rooms(&self, user: &UserId) -> Result<HashSet<OwnedRoomId>, SyncError> {
        let Some(direct) = self
            .store
            .shared_account_data(user, None, "m.direct")
            .await?
        else {
            return Ok(HashSet::new());
        };
        let direct: serde_json::Value = serde_json::from_str(&direct).unwrap_or_default();
        Ok(direct
            .as_object()
            .into_iter()
            .flat_map(|by_user| by_user.values())
            .filter_map(|rooms| rooms.as_array())
            .flatten()
            .filter_map(|room| room.as_str())
            .filter_map(|room| OwnedRoomId::try_from(room).ok())
            .collect())
    }

    /// The tags (`m.tag` room account data) the user gave each room.
    async fn room_tags(
        &self,
        user: &UserId,
        rooms: &[OwnedRoomId],
    ) -> Result<HashMap<OwnedRoomId, BTreeSet<String>>, SyncError> {
        let mut tags = HashMap::new();
        for room in rooms {
            let Some(content) = self
                .store
                .shared_account_data(user, Some(room), "m.tag")
                .await?
            else {
                continue;
            };
            let content: serde_json::Value = serde_json::from_str(&content).unwrap_or_default();
            let names: BTreeSet<String> = content["tags"]
                .as_object()
                .into_iter()
                .flat_map(|t| t.keys().cloned())
                .collect();
            if !names.is_empty() {
                tags.insert(room.clone(), names);
            }
        }
        Ok(tags)
    }

    /// The rooms that the named spaces the user is joined to name as children: their
    /// `m.space.child` state events with a non-empty `via` (spec: a child without `via` is
    /// not a child). Subspaces are not followed, as the MSC says; other spaces are ignored.
    async fn space_children(
        &self,
        spaces: &BTreeSet<OwnedRoomId>,
        joined: &HashSet<&ruma::RoomId>,
    ) -> Result<HashSet<OwnedRoomId>, SyncError> {
        let spaces: Vec<OwnedRoomId> = spaces
            .iter()
            .filter(|s| joined.contains(&***s))
            .cloned()
            .collect();
        if spaces.is_empty() {
            return Ok(HashSet::new());
        }
        let mut ids = Vec::new();
        for space in &spaces {
            let state = self.rooms.current_state(space).await?;
            ids.extend(
                state
                    .iter()
                    .filter(|((kind, _), _)| *kind == StateEventType::SpaceChild)
                    .map(|(_, id)| id.clone()),
            );
        }
        let pdus = self.rooms.load_pdus(&ids).await?;
        Ok(pdus
            .values()
            .filter(|pdu| {
                pdu.content_json()["via"]
                    .as_array()
                    .is_some_and(|via| !via.is_empty())
            })
            .filter_map(|pdu| pdu.state_key())
            .filter_map(|key| OwnedRoomId::try_from(key).ok())
            .collect())
    }

    /// Whether each room is encrypted, and its type: two state events per room, read for all
    /// the rooms in one go.
    async fn room_facts(
        &self,
        rooms: &[OwnedRoomId],
    ) -> Result<HashMap<OwnedRoomId, RoomFacts>, SyncError> {
        let rows = self
            .store
            .current_state_of_types(rooms, &["m.room.create", "m.room.encryption"])
            .await?;
        let mut facts: HashMap<OwnedRoomId, RoomFacts> = rooms
            .iter()
            .map(|room| (room.clone(), RoomFacts::default()))
            .collect();
        let mut creates = Vec::new();
        for (room, kind, event) in rows {
            if kind == "m.room.encryption" {
                facts.entry(room).or_default().encrypted = true;
            } else {
                creates.push((room, event));
            }
        }
        let ids: Vec<_> = creates.iter().map(|(_, event)| event.clone()).collect();
        let pdus = self.rooms.load_pdus(&ids).await?;
        for (room, event) in creates {
            if let Some(pdu) = pdus.get(&event) {
                facts.entry(room).or_default().room_type =
                    pdu.content_json()["type"].as_str().map(str::to_owned);
            }
        }
        Ok(facts)
    }
}

/// Refuse what no client needs and would cost the server without bound.
fn validate(request: &v5::Request) -> Result<(), SlidingError> {
    let invalid = |what: String| Err(SlidingError::Invalid(what));
    if request.lists.len() > MAX_LISTS {
        return invalid(format!("at most {MAX_LISTS} lists"));
    }
    if request.room_subscriptions.len() > MAX_SUBSCRIPTIONS {
        return invalid(format!("at most {MAX_SUBSCRIPTIONS} room subscriptions"));
    }
    if request.conn_id.as_ref().is_some_and(|c| c.len() > 64) {
        return invalid("conn_id is at most 64 bytes".into());
    }
    for (name, list) in &request.lists {
        if list.ranges.len() > 100 {
            return invalid(format!("list {name}: at most 100 ranges"));
        }
        if let Some((start, end)) = list.ranges.iter().find(|(start, end)| start > end) {
            return invalid(format!("list {name}: range [{start}, {end}] is inverted"));
        }
        if list.room_details.required_state.len() > MAX_REQUIRED_STATE {
            return invalid(format!(
                "list {name}: at most {MAX_REQUIRED_STATE} required_state entries"
            ));
        }
    }
    if request
        .room_subscriptions
        .values()
        .any(|s| s.required_state.len() > MAX_REQUIRED_STATE)
    {
        return invalid(format!(
            "at most {MAX_REQUIRED_STATE} required_state entries a subscription"
        ));
    }
    Ok(())
}

/// No tags.
static NO_TAGS: BTreeSet<String> = BTreeSet::new();

/// A list's filters: ruma's, the extra ones, and the children of the spaces it names.
struct Filter<'a> {
    filters: Option<&'a v5::request::ListFilters>,
    extra: Option<&'a ExtraFilters>,
    children: Option<&'a HashSet<OwnedRoomId>>,
}

impl Filter<'_> {
    /// Whether a room passes the list's filters (all of them: they are AND'd, the values within
    /// one OR'd).
    fn passes(
        &self,
        membership: &Membership,
        direct: &HashSet<OwnedRoomId>,
        facts: Option<&RoomFacts>,
        tags: &BTreeSet<String>,
    ) -> bool {
        let room = &membership.room_id;
        if let Some(children) = self.children
            && !children.contains(room)
        {
            return false;
        }
        if let Some(extra) = self.extra {
            if extra.not_tags.iter().any(|t| tags.contains(t)) {
                return false;
            }
            if let Some(wanted) = &extra.tags
                && !wanted.iter().any(|t| tags.contains(t))
            {
                return false;
            }
        }
        let Some(filters) = self.filters else {
            return true;
        };
        if let Some(is_dm) = filters.is_dm
            && direct.contains(room) != is_dm
        {
            return false;
        }
        if let Some(is_invite) = filters.is_invite
            && (membership.membership == "invite") != is_invite
        {
            return false;
        }
        if let Some(facts) = facts {
            if let Some(encrypted) = filters.is_encrypted
                && facts.encrypted != encrypted
            {
                return false;
            }
            let kind = |t: &ruma::directory::RoomTypeFilter| t.as_str().map(str::to_owned);
            if !filters.room_types.is_empty()
                && !filters
                    .room_types
                    .iter()
                    .any(|t| kind(t) == facts.room_type)
            {
                return false;
            }
            if filters
                .not_room_types
                .iter()
                .any(|t| kind(t) == facts.room_type)
            {
                return false;
            }
        }
        true
    }
}

/// The rooms an extension covers: those of the named lists (all lists when none are named)
/// and the subscriptions (`*`) or the rooms named.
fn extension_scope(
    lists: &Option<Vec<String>>,
    rooms: &Option<Vec<ExtensionRoomConfig>>,
    in_list: &BTreeMap<&str, BTreeSet<OwnedRoomId>>,
    subscribed: &BTreeSet<OwnedRoomId>,
) -> BTreeSet<OwnedRoomId> {
    let mut scope = BTreeSet::new();
    for (name, rooms) in in_list {
        if lists
            .as_ref()
            .is_none_or(|wanted| wanted.iter().any(|w| w == "*" || w == name))
        {
            scope.extend(rooms.iter().cloned());
        }
    }
    match rooms {
        None => scope.extend(subscribed.iter().cloned()),
        Some(rooms) => {
            for room in rooms {
                match room {
                    ExtensionRoomConfig::AllSubscribed => scope.extend(subscribed.iter().cloned()),
                    ExtensionRoomConfig::Room(id) if subscribed.contains(id) => {
                        scope.insert(id.clone());
                    }
                    _ => {}
                }
            }
        }
    }
    scope
}

fn previous_counts_differ(previous: &ConnectionState, state: &ConnectionState) -> bool {
    state
        .counts
        .iter()
        .any(|(name, count)| previous.counts.get(name) != Some(count))
}

/// The to-device position of a `since` token: this API's own (a number), or a `/sync` token's
/// to-device part (the SDK keeps one token for both).
fn to_device_since(since: &str) -> Option<i64> {
    since
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .or_else(|| since.parse::<SyncToken>().ok().map(|t| t.to_device))
}

fn raw_of<T>(value: &serde_json::Value) -> Result<Raw<T>, SlidingError> {
    serde_json::value::to_raw_value(value)
        .map(Raw::from_json)
        .map_err(|e| {
            SlidingError::Sync(SyncError::Store(hearth_store::StoreError::Corrupt(
                e.to_string(),
            )))
        })
}
