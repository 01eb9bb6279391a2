//! Client sync. `/sync` (v2) reads what changed for a user since their token and, when nothing
//! did, waits on the store's change notifier (never polls the database) until something does or
//! the timeout passes.

mod bounded;
pub mod filter;
pub mod ignored;
mod lazy_members;
mod notifications;
pub mod presence;
pub mod push_rules;
mod rooms;
pub mod sliding;
pub mod threads;
mod token;
mod typing;
mod unread;
mod update;
pub mod v2;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use hearth_rooms::{RoomError, Rooms};
use hearth_store::{Store, StoreError};
use ruma::{OwnedDeviceId, OwnedRoomId, OwnedUserId};
use serde_json::{Value, json};
use tokio::time::Instant;

pub use filter::{SenderFilter, SyncFilter, type_matches};
pub use notifications::NotificationsPage;
pub use presence::Presence;
pub use token::{PaginationToken, SyncToken};
pub use typing::{MAX_TYPING, Typing};

/// Why a sync failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Rooms(#[from] RoomError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    E2ee(#[from] hearth_e2ee::E2eeError),
}

/// One `/sync` request.
#[derive(Debug, Clone)]
pub struct SyncRequest {
    pub user: OwnedUserId,
    pub device: OwnedDeviceId,
    pub since: Option<SyncToken>,
    pub timeout: Duration,
    pub full_state: bool,
    pub filter: SyncFilter,
    /// `online` and `unavailable` mark the user so while the sync runs; `offline` does not.
    pub set_presence: ruma::presence::PresenceState,
}

/// The sync service.
#[derive(Clone, Debug)]
pub struct Syncer {
    store: Store,
    rooms: Rooms,
    typing: Typing,
    presence: Presence,
    unread_cache: unread::UnreadCache,
    sent_members: lazy_members::SentMembers,
    e2ee: hearth_e2ee::E2ee,
    connections: sliding::connection::Connections,
}

/// What one pass found.
struct Pass {
    response: v2::SyncResponse,
    has_updates: bool,
}

impl Syncer {
    pub fn new(
        store: Store,
        rooms: Rooms,
        typing: Typing,
        presence: Presence,
        e2ee: hearth_e2ee::E2ee,
    ) -> Self {
        Self {
            store,
            rooms,
            typing,
            presence,
            unread_cache: unread::UnreadCache::default(),
            sent_members: lazy_members::SentMembers::default(),
            e2ee,
            connections: sliding::connection::Connections::default(),
        }
    }

    pub fn typing(&self) -> &Typing {
        &self.typing
    }

    pub fn presence(&self) -> &Presence {
        &self.presence
    }

    /// Answer a `/sync`: immediately if there is news (or this is an initial sync), otherwise
    /// after the first change that concerns the user, or at the timeout.
    pub async fn sync(&self, request: &SyncRequest) -> Result<v2::SyncResponse, SyncError> {
        let deadline = Instant::now() + request.timeout;
        // Registered before reading, so news between the read and the wait is not missed.
        let mut waiter = self.store.notifier().waiter();
        waiter.watch_device(&request.user, &request.device);
        let _online = self
            .presence
            .sync_started(&request.user, &request.set_presence);
        // Materialised here rather than at registration so that every account, however it was
        // created, syncs `m.push_rules` (clients expect it in the account data).
        // (The store keeps account data in memory: asking again costs no query.)
        push_rules::ensure_stored(&self.store, &request.user).await?;
        loop {
            // The user's rooms as of now; a membership change after this read is news about
            // the user, which wakes the waiter, and the next turn watches the new room.
            let (memberships, _) = self.consistent_memberships(&request.user).await?;
            waiter.watch_rooms(
                memberships
                    .iter()
                    .filter(|m| request.filter.wants(&m.room_id))
                    .map(|m| &*m.room_id),
            );
            let pass = self.pass(request, &memberships).await?;
            if pass.has_updates
                || request.since.is_none()
                || request.full_state
                || Instant::now() >= deadline
            {
                return Ok(pass.response);
            }
            if tokio::time::timeout_at(deadline, waiter.woken())
                .await
                .is_err()
            {
                // Timed out: answer with the empty pass.
                return Ok(pass.response);
            }
        }
    }

    /// One look at what changed for the user in `memberships` (read before the waiter
    /// watched their rooms; the event position is read after, so nothing falls between).
    async fn pass(
        &self,
        request: &SyncRequest,
        memberships: &[hearth_store::Membership],
    ) -> Result<Pass, SyncError> {
        let mut now = SyncToken {
            // Not older than the memberships' position, which it can only have passed.
            events: self.store.current_stream(),
            typing: self.typing.serial(),
            account_data: self.store.max_account_data_stream().await?,
            receipts: self.store.max_receipt_stream().await?,
            presence: self.presence.serial(),
            to_device: self.store.max_to_device_stream(),
            device_lists: self.store.max_device_list_stream(),
        };
        let (global_data, mut room_data) = self.account_data(request, now).await?;
        let mut response = v2::SyncResponse::default();
        let rooms = &mut response.rooms;
        let mut new_mates = BTreeSet::new();
        let ignored = ignored::ignored_users(&self.store, &request.user).await?;
        let unread = unread::Unread::new(self, &request.user, Arc::new(ignored.clone()));
        for membership in memberships {
            if !request.filter.wants(&membership.room_id) || membership.stream_ordering > now.events
            {
                continue;
            }
            let room = &membership.room_id;
            let news = request
                .since
                .is_none_or(|s| membership.stream_ordering > s.events);
            match membership.membership.as_str() {
                "join" => {
                    let data = room_data.remove(room).unwrap_or_default();
                    let update =
                        rooms::joined(self, request, membership, now, data, &ignored).await?;
                    if let Some(mut update) = update {
                        let per_thread = request.filter.unread_thread_notifications;
                        update.counts = Some(unread.counts(room, now.events, per_thread).await?);
                        joins_in(&update, &mut new_mates);
                        rooms.join.insert(room.clone(), update.into_v2_joined());
                    }
                }
                "invite" if news => {
                    // The invite itself comes last.
                    let stripped = rooms::stripped(self, membership).await?;
                    let inviter = stripped.last().and_then(|e| e["sender"].as_str());
                    if inviter.is_some_and(|s| ignored.iter().any(|i| i.as_str() == s)) {
                        // An invite from someone the user ignores never reaches them.
                        continue;
                    }
                    rooms
                        .invite
                        .insert(room.clone(), v2::InvitedRoom::new(stripped));
                }
                "knock" if news => {
                    let stripped = rooms::stripped(self, membership).await?;
                    rooms
                        .knock
                        .insert(room.clone(), v2::KnockedRoom::new(stripped));
                }
                "leave" | "ban" => {
                    let wanted = request.since.is_none() && request.filter.include_leave;
                    if (request.since.is_some() && news) || wanted {
                        let update = rooms::left(self, request, membership, &ignored).await?;
                        rooms.leave.insert(room.clone(), update.into_v2_left());
                    }
                }
                _ => {}
            }
        }
        let presence = self
            .presence_events(request, memberships, now, new_mates)
            .await?;
        let e2ee = self.e2ee_pass(request, now).await?;
        now.to_device = e2ee.to_device_seen;
        response.next_batch = now.to_string();
        response.account_data.events = global_data;
        response.presence.events = presence;
        response.to_device.events = e2ee.to_device;
        response.device_lists.changed = e2ee.device_lists.changed;
        response.device_lists.left = e2ee.device_lists.left;
        response.device_one_time_keys_count = e2ee.one_time_key_counts;
        response.device_unused_fallback_key_types = e2ee.unused_fallback_key_types;
        let has_updates = response.has_news();
        Ok(Pass {
            response,
            has_updates,
        })
    }

    /// The user's memberships, and the event position they are consistent with.
    ///
    /// The memberships must not be newer than the event position a pass answers up to: a room
    /// whose membership row is ahead would otherwise be left out of this response while its
    /// next token already covers its events. The writer publishes a position right after
    /// committing, so a newer row only means "look again in a moment".
    pub(crate) async fn consistent_memberships(
        &self,
        user: &ruma::UserId,
    ) -> Result<(Arc<Vec<hearth_store::Membership>>, i64), SyncError> {
        let mut attempt = 0;
        loop {
            let memberships = self.store.memberships_of(user).await?;
            let events = self.store.current_stream();
            if memberships.iter().all(|m| m.stream_ordering <= events) || attempt >= 100 {
                return Ok((memberships, events));
            }
            attempt += 1;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// The device's E2EE news: to-device messages (acknowledging those up to the token),
    /// device-list changes since the token (none on an initial sync), and its key counts.
    async fn e2ee_pass(
        &self,
        request: &SyncRequest,
        now: SyncToken,
    ) -> Result<E2eePass, SyncError> {
        let (to_device, to_device_seen) = self
            .e2ee
            .to_device_for(
                &request.user,
                &request.device,
                request.since.map(|s| s.to_device),
                now.to_device,
                None,
            )
            .await?;
        let device_lists = match request.since {
            Some(since) => {
                self.e2ee
                    .device_list_changes(
                        &request.user,
                        (since.events, since.device_lists),
                        (now.events, now.device_lists),
                    )
                    .await?
            }
            None => hearth_e2ee::DeviceListChanges::default(),
        };
        Ok(E2eePass {
            to_device,
            to_device_seen,
            device_lists,
            one_time_key_counts: self
                .e2ee
                .one_time_key_counts(&request.user, &request.device)
                .await?,
            unused_fallback_key_types: self
                .e2ee
                .unused_fallback_key_types(&request.user, &request.device)
                .await?,
        })
    }

    /// `m.presence` of the users whose presence changed since the token and who share a room
    /// with the user (or are the user).
    /// Those who joined one of the user's rooms in this response (`new_mates`) come with their
    /// current presence too: the user may never have seen it.
    async fn presence_events(
        &self,
        request: &SyncRequest,
        memberships: &[hearth_store::Membership],
        now: SyncToken,
        new_mates: BTreeSet<OwnedUserId>,
    ) -> Result<Vec<Value>, SyncError> {
        let Some(filter) = &request.filter.presence else {
            return Ok(Vec::new());
        };
        let since = request.since.map(|s| s.presence);
        let changed = self.presence.changed(since, now.presence);
        if since.is_some() {
            let known: BTreeSet<OwnedUserId> = changed.iter().map(|(u, _)| u.clone()).collect();
            let fresh = new_mates
                .iter()
                .filter(|u| !known.contains(*u) && **u != request.user)
                .map(|u| &**u);
            // They share a room with the user: this response says so.
            let current = self.presence.current(fresh);
            return Ok(self
                .visible_presence(request, memberships, filter, changed)
                .await?
                .into_iter()
                .chain(
                    current
                        .into_iter()
                        .filter(|(u, _)| filter.wants(u))
                        .map(|(u, c)| presence::event(&u, c)),
                )
                .collect());
        }
        self.visible_presence(request, memberships, filter, changed)
            .await
    }

    /// The `m.presence` events of `changed` that the user may see: their own, and those of
    /// users who share a room with them.
    async fn visible_presence(
        &self,
        request: &SyncRequest,
        memberships: &[hearth_store::Membership],
        filter: &SenderFilter,
        changed: Vec<(OwnedUserId, Value)>,
    ) -> Result<Vec<Value>, SyncError> {
        if changed.is_empty() {
            return Ok(Vec::new());
        }
        let joined: std::collections::HashSet<&ruma::RoomId> = memberships
            .iter()
            .filter(|m| m.membership == "join")
            .map(|m| &*m.room_id)
            .collect();
        // A few changes (the usual incremental sync): look at each changed user's rooms. Many
        // (an initial sync): list the members of the user's rooms once instead.
        let room_mates = if changed.len() > joined.len() {
            let mut mates = std::collections::HashSet::new();
            for room in &joined {
                for member in self.store.room_members(room, Some("join")).await? {
                    mates.insert(member.user_id);
                }
            }
            Some(mates)
        } else {
            None
        };
        let mut events = Vec::new();
        for (user, content) in changed {
            if !filter.wants(&user) {
                continue;
            }
            let shares_a_room = user == request.user
                || match &room_mates {
                    Some(mates) => mates.contains(&user),
                    None => self
                        .store
                        .memberships_of(&user)
                        .await?
                        .iter()
                        .any(|m| m.membership == "join" && joined.contains(&*m.room_id)),
                };
            if shares_a_room {
                events.push(presence::event(&user, content));
            }
        }
        Ok(events)
    }

    /// Account data changed since the token (all of it on an initial sync): global events, and
    /// per-room events by room.
    async fn account_data(
        &self,
        request: &SyncRequest,
        now: SyncToken,
    ) -> Result<(Vec<Value>, BTreeMap<OwnedRoomId, Vec<Value>>), SyncError> {
        let since = request.since.map_or(0, |s| s.account_data);
        let mut global = Vec::new();
        let mut rooms: BTreeMap<OwnedRoomId, Vec<Value>> = BTreeMap::new();
        for row in self.store.account_data_since(&request.user, since).await? {
            if row.stream_ordering > now.account_data {
                continue;
            }
            let content: Value = serde_json::from_str(&row.content).unwrap_or(Value::Null);
            let event = json!({ "type": row.data_type, "content": content });
            match row.room_id {
                Some(room) => rooms.entry(room).or_default().push(event),
                None => global.push(event),
            }
        }
        Ok((global, rooms))
    }
}

/// What a pass sends of end-to-end encryption.
struct E2eePass {
    to_device: Vec<hearth_e2ee::ToDeviceEvent>,
    /// The to-device position the response's token carries.
    to_device_seen: i64,
    device_lists: hearth_e2ee::DeviceListChanges,
    one_time_key_counts: BTreeMap<ruma::OneTimeKeyAlgorithm, ruma::UInt>,
    unused_fallback_key_types: Vec<ruma::OneTimeKeyAlgorithm>,
}

/// Add the users whose joins a room's update carries (as member events in its timeline or
/// state).
fn joins_in(update: &update::RoomUpdate, users: &mut BTreeSet<OwnedUserId>) {
    for event in update.timeline.iter().chain(&update.state) {
        if event["type"] == "m.room.member"
            && event["content"]["membership"] == "join"
            && let Some(user) = event["state_key"]
                .as_str()
                .and_then(|k| OwnedUserId::try_from(k).ok())
        {
            users.insert(user);
        }
    }
}
