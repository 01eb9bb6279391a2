//! Unread notification counts of joined rooms (`unread_notifications` in `/sync`).
//!
//! Counted when a sync asks, not when events arrive: the events after the user's read position
//! are run through the user's push rules, and those whose actions notify are counted (and those
//! that also highlight). The read position is the newer of the user's latest `m.read` /
//! `m.read.private` receipt and their own latest event in the room: someone who wrote has read
//! what came before, which is also how Synapse treats a user's own events.
//!
//! The scan is capped at the room's newest [`SCAN_LIMIT`] events, so a busy room the user never
//! wrote in costs one bounded read; the counts then top out at that number. Push rule conditions
//! are evaluated against the room as it is now (member count, the user's display name, power
//! levels) rather than as it was at each event, which only differs when those changed since.

use hearth_rooms::Pdu;
use ruma::events::StateEventType;
use ruma::events::room::power_levels::{
    RoomPowerLevels, RoomPowerLevelsEventContent, RoomPowerLevelsSource,
};
use ruma::push::{Action, PushConditionPowerLevelsCtx, PushConditionRoomCtx, Ruleset};
use ruma::room_version_rules::AuthorizationRules;
use ruma::serde::Raw;
use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId, RoomId, RoomVersionId, UInt, UserId};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

use crate::{SyncError, Syncer, push_rules};

/// The most events looked at per room.
// NOTSPEC: the counts stop at this many unread events (clients show "99+" long before).
pub const SCAN_LIMIT: i64 = 100;

/// The one field of a stored PDU needed before deciding to evaluate it.
#[derive(Deserialize)]
struct Sender<'a> {
    #[serde(borrow)]
    sender: &'a str,
}

/// The last count of one user's room, to continue from.
#[derive(Debug, Clone)]
pub(crate) struct UnreadCount {
    /// Counted up to this stream position.
    upto: i64,
    /// The read receipts it was counted against.
    read: Arc<Vec<OwnedEventId>>,
    /// The account data position then: a change of push rules (account data) means a recount.
    rules_version: i64,
    notifications: u64,
    highlights: u64,
}

/// A map kept in memory between syncs that starts over when it is full: a miss only costs
/// the work it saves.
#[derive(Debug, Clone)]
struct Bounded<K, V> {
    map: Arc<Mutex<HashMap<K, V>>>,
    capacity: usize,
}

impl<K: Eq + Hash, V: Clone> Bounded<K, V> {
    fn new(capacity: usize) -> Self {
        Self {
            map: Arc::default(),
            capacity,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, V>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, key: &K) -> Option<V> {
        self.lock().get(key).cloned()
    }

    fn put(&self, key: K, value: V) {
        let mut map = self.lock();
        if map.len() >= self.capacity && !map.contains_key(&key) {
            map.clear();
        }
        map.insert(key, value);
    }
}

/// What unread counting keeps between syncs.
#[derive(Debug, Clone)]
pub(crate) struct UnreadCache {
    /// The last counts by (user, room).
    counts: Bounded<(OwnedUserId, OwnedRoomId), UnreadCount>,
    /// Each user's parsed push rules, with the stored content they were parsed from.
    rules: Bounded<OwnedUserId, (Option<String>, Arc<Ruleset>)>,
    /// Push-condition contexts by (user, state group): a state group never changes.
    contexts: Bounded<(OwnedUserId, i64), Arc<PushConditionRoomCtx>>,
}

impl Default for UnreadCache {
    fn default() -> Self {
        Self {
            counts: Bounded::new(100_000),
            rules: Bounded::new(10_000),
            contexts: Bounded::new(10_000),
        }
    }
}

/// Counts for one sync pass: the user's push rules are read once, when the first room needs them.
pub(crate) struct Unread<'a> {
    syncer: &'a Syncer,
    user: &'a UserId,
    rules_version: i64,
    rules: OnceCell<Arc<Ruleset>>,
}

impl<'a> Unread<'a> {
    pub(crate) fn new(syncer: &'a Syncer, user: &'a UserId, rules_version: i64) -> Self {
        Self {
            syncer,
            user,
            rules_version,
            rules: OnceCell::new(),
        }
    }

    /// `{notification_count, highlight_count}` for the room as of stream position `upto`.
    pub(crate) async fn counts(&self, room: &RoomId, upto: i64) -> Result<Value, SyncError> {
        let (notifications, highlights) = self.count(room, upto).await?;
        Ok(json!({
            "notification_count": notifications,
            "highlight_count": highlights,
        }))
    }

    async fn count(&self, room: &RoomId, upto: i64) -> Result<(u64, u64), SyncError> {
        let read = self.read_receipts(room).await?;
        let key = (self.user.to_owned(), room.to_owned());
        let cached = self.syncer.unread_cache.counts.get(&key);
        // Only the events since the last count are new, as long as the user's read position
        // hasn't moved: each sync then evaluates a handful of events, not the whole backlog.
        if let Some(cached) = cached
            .filter(|c| c.read == read && c.upto <= upto && c.rules_version == self.rules_version)
        {
            let fresh = self
                .syncer
                .store
                .room_events_backwards(room, cached.upto, upto, SCAN_LIMIT)
                .await?;
            let own = fresh.iter().any(|e| {
                serde_json::from_str::<Sender<'_>>(&e.json)
                    .is_ok_and(|e| e.sender == self.user.as_str())
            });
            let read_now = fresh.iter().any(|e| read.contains(&e.event_id));
            if !own && !read_now && (fresh.len() as i64) < SCAN_LIMIT {
                let (n, h) = self.evaluate(room, &fresh).await?;
                let counts = (cached.notifications + n, cached.highlights + h);
                self.syncer.unread_cache.counts.put(
                    key,
                    UnreadCount {
                        upto,
                        read,
                        rules_version: self.rules_version,
                        notifications: counts.0,
                        highlights: counts.1,
                    },
                );
                return Ok(counts);
            }
        }
        let counts = self.recount(room, upto, &read).await?;
        self.syncer.unread_cache.counts.put(
            key,
            UnreadCount {
                upto,
                read,
                rules_version: self.rules_version,
                notifications: counts.0,
                highlights: counts.1,
            },
        );
        Ok(counts)
    }

    /// Count from scratch: the newest events back to the read position.
    async fn recount(
        &self,
        room: &RoomId,
        upto: i64,
        read: &[OwnedEventId],
    ) -> Result<(u64, u64), SyncError> {
        let newest_first = self
            .syncer
            .store
            .room_events_backwards(room, 0, upto, SCAN_LIMIT)
            .await?;
        let mut unread: Vec<_> = newest_first
            .into_iter()
            .take_while(|event| {
                // An unreadable event is not the user's: it cannot end the unread run.
                serde_json::from_str::<Sender<'_>>(&event.json)
                    .map_or(true, |e| e.sender != self.user.as_str())
            })
            .collect();
        if let Some(at) = unread.iter().position(|e| read.contains(&e.event_id)) {
            unread.truncate(at);
        }
        self.evaluate(room, &unread).await
    }

    /// Run events through the user's push rules: (notifying, highlighting).
    async fn evaluate(
        &self,
        room: &RoomId,
        events: &[hearth_store::StoredEvent],
    ) -> Result<(u64, u64), SyncError> {
        let Some(first) = events.first() else {
            return Ok((0, 0));
        };
        let rules = self.rules.get_or_try_init(|| self.ruleset()).await?;
        // Conditions see the room as it is after the newest event (the first, newest first).
        let context = self
            .context(room, &first.room_version, first.state_group_after)
            .await?;
        let (mut notifications, mut highlights) = (0, 0);
        for event in events {
            let Ok(raw) = RawValue::from_string(event.json.clone()) else {
                continue;
            };
            let actions = rules
                .get_actions(&Raw::<Value>::from_json(raw), &context)
                .await;
            // Spec: the highlight count counts notifications that have the highlight tweak.
            if actions.iter().any(Action::should_notify) {
                notifications += 1;
                if actions.iter().any(Action::is_highlight) {
                    highlights += 1;
                }
            }
        }
        Ok((notifications, highlights))
    }

    /// The events the user's read receipts (`m.read`, `m.read.private`; unthreaded or for the
    /// main timeline) point at in the room.
    async fn read_receipts(&self, room: &RoomId) -> Result<Arc<Vec<OwnedEventId>>, SyncError> {
        Ok(self
            .syncer
            .store
            .read_receipt_events(room, self.user)
            .await?)
    }

    /// The user's push rules, parsed again only when their stored content changed.
    async fn ruleset(&self) -> Result<Arc<Ruleset>, SyncError> {
        let store = &self.syncer.store;
        let content = store
            .account_data(self.user, None, push_rules::PUSH_RULES_TYPE)
            .await?;
        let cache = &self.syncer.unread_cache.rules;
        if let Some((parsed_from, rules)) = cache.get(&self.user.to_owned())
            && parsed_from == content
        {
            return Ok(rules);
        }
        let rules = Arc::new(push_rules::ruleset_from(content.as_deref(), self.user));
        cache.put(self.user.to_owned(), (content, rules.clone()));
        Ok(rules)
    }

    /// What push conditions need to know about the room in the given state group.
    async fn context(
        &self,
        room: &RoomId,
        version: &RoomVersionId,
        state_group: i64,
    ) -> Result<Arc<PushConditionRoomCtx>, SyncError> {
        let key = (self.user.to_owned(), state_group);
        let cache = &self.syncer.unread_cache.contexts;
        if let Some(context) = cache.get(&key) {
            return Ok(context);
        }
        let context = Arc::new(self.read_context(room, version, state_group).await?);
        cache.put(key, context.clone());
        Ok(context)
    }

    async fn read_context(
        &self,
        room: &RoomId,
        version: &RoomVersionId,
        state_group: i64,
    ) -> Result<PushConditionRoomCtx, SyncError> {
        let state = self.syncer.rooms.state_group(state_group).await?;
        let create_key = (StateEventType::RoomCreate, String::new());
        let levels_key = (StateEventType::RoomPowerLevels, String::new());
        let member_key = (StateEventType::RoomMember, self.user.to_string());
        let ids: Vec<_> = [&create_key, &levels_key, &member_key]
            .into_iter()
            .filter_map(|key| state.get(key).cloned())
            .collect();
        let pdus = self.syncer.rooms.load_pdus(&ids).await?;
        let get = |key| state.get(key).and_then(|id| pdus.get(id));

        let joined = self
            .syncer
            .store
            .room_members(room, Some("join"))
            .await?
            .len();
        let display_name = get(&member_key)
            .and_then(|member| {
                content(member)
                    .get("displayname")?
                    .as_str()
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        let context = PushConditionRoomCtx::new(
            room.to_owned(),
            UInt::try_from(joined).unwrap_or(UInt::MAX),
            self.user.to_owned(),
            display_name,
        );
        Ok(
            match version
                .rules()
                .map(|rules| power_levels(&rules.authorization, get(&create_key), get(&levels_key)))
            {
                Some(levels) => context.with_power_levels(levels),
                // An unknown room version: rules that need power levels will not match.
                None => context,
            },
        )
    }
}

fn content(pdu: &Pdu) -> Value {
    serde_json::from_str(pdu.content().get()).unwrap_or(Value::Null)
}

/// Power levels for push conditions (`sender_notification_permission`), with the room's creators
/// for the room versions in which they outrank every level.
fn power_levels(
    rules: &AuthorizationRules,
    create: Option<&Arc<Pdu>>,
    levels: Option<&Arc<Pdu>>,
) -> PushConditionPowerLevelsCtx {
    let mut creators: Vec<OwnedUserId> = Vec::new();
    if let Some(create) = create {
        let content = content(create);
        if rules.use_room_create_sender {
            creators.push(create.sender().to_owned());
        } else if let Some(creator) = content.get("creator").and_then(Value::as_str)
            && let Ok(creator) = OwnedUserId::try_from(creator)
        {
            creators.push(creator);
        }
        if rules.additional_room_creators
            && let Some(extra) = content.get("additional_creators").and_then(Value::as_array)
        {
            creators.extend(
                extra
                    .iter()
                    .filter_map(Value::as_str)
                    .filter_map(|id| OwnedUserId::try_from(id).ok()),
            );
        }
    }
    let source = match levels {
        Some(levels) => {
            match serde_json::from_str::<RoomPowerLevelsEventContent>(levels.content().get()) {
                Ok(content) => RoomPowerLevelsSource::Original(content),
                // Malformed levels count as none (auth would have refused most such events).
                Err(_) => RoomPowerLevelsSource::None,
            }
        }
        None => RoomPowerLevelsSource::None,
    };
    RoomPowerLevels::new(source, rules, creators).into()
}
