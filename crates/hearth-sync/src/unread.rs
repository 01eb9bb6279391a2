//! Unread notification counts of joined rooms (`unread_notifications` and, when the filter asks,
//! `unread_thread_notifications` in `/sync`).
//!
//! Counted when a sync asks, not when events arrive: the events the user has not read are run
//! through the user's push rules, and those whose actions notify are counted (and those that
//! also highlight). Counts are partitioned by thread, the main timeline being a thread of its
//! own (spec: "Receiving notifications"): an event belongs to the thread its `m.thread`
//! relation names, or that of the event it relates to (up to three hops); anything else,
//! thread roots included, is in the main timeline. An event is read when it is at or before
//! the user's unthreaded `m.read` / `m.read.private` receipt, their receipt for its thread, or
//! their own latest event in that thread (someone who wrote has read what came before, as
//! Synapse also treats it). Without per-thread counts the room's count is the sum.
//!
//! The scan is capped at the room's newest [`SCAN_LIMIT`] events, so a busy room the user never
//! wrote in costs one bounded read; the counts then top out at that number. Push rule conditions
//! are evaluated against the room in the state after the newest counted event.
//!
//! Events from users the reader ignores do not count while they are ignored; counted as they
//! are now, they count again once un-ignored if still unread.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use hearth_rooms::{Pdu, StateIds};
use hearth_store::{ReadReceipts, StoredEvent};
use ruma::api::client::sync::sync_events::UnreadNotificationsCount;
use ruma::events::StateEventType;
use ruma::events::room::power_levels::{
    RoomPowerLevels, RoomPowerLevelsEventContent, RoomPowerLevelsSource,
};
use ruma::push::{Action, PushConditionPowerLevelsCtx, PushConditionRoomCtx, Ruleset};
use ruma::room_version_rules::AuthorizationRules;
use ruma::serde::Raw;
use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId, RoomId, RoomVersionId, UInt, UserId};
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::OnceCell;

use crate::bounded::Bounded;
use crate::threads::{EventHead, Thread, head};
use crate::{SyncError, Syncer, push_rules};

/// The most events looked at per room.
// NOTSPEC: the counts stop at this many unread events (clients show "99+" long before).
pub const SCAN_LIMIT: i64 = 100;

/// Notification and highlight counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Tally {
    notifications: u64,
    highlights: u64,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.notifications += other.notifications;
        self.highlights += other.highlights;
    }

    fn count(self) -> UnreadNotificationsCount {
        let mut count = UnreadNotificationsCount::new();
        count.notification_count = Some(UInt::new_saturating(self.notifications));
        count.highlight_count = Some(UInt::new_saturating(self.highlights));
        count
    }
}

/// A room's counts as a sync sends them: the room's (or its main timeline's), and its threads'.
#[derive(Debug, Clone, Default)]
pub(crate) struct RoomCounts {
    pub(crate) room: UnreadNotificationsCount,
    pub(crate) threads: BTreeMap<OwnedEventId, UnreadNotificationsCount>,
}

/// A room's counts by thread.
#[derive(Debug, Clone, Default)]
struct Counts {
    main: Tally,
    threads: BTreeMap<OwnedEventId, Tally>,
}

impl Counts {
    fn add(&mut self, thread: &Thread, tally: Tally) {
        match thread {
            None => self.main.add(tally),
            Some(root) => self.threads.entry(root.clone()).or_default().add(tally),
        }
    }
}

/// The last count of one user's room, to continue from.
#[derive(Debug, Clone)]
pub(crate) struct UnreadCount {
    /// Counted up to this stream position.
    upto: i64,
    /// The read receipts it was counted against.
    read: ReadReceipts,
    /// The push rules it was counted with: other rules (the same parse is shared while the
    /// stored rules are unchanged) mean a recount.
    rules: Arc<Ruleset>,
    /// The users ignored when it was counted: their events do not count.
    ignored: Arc<BTreeSet<OwnedUserId>>,
    counts: Counts,
}

/// How far the user has read: the stream positions of their read receipts.
#[derive(Debug, Default)]
struct ReadMarks {
    unthreaded: i64,
    main: i64,
    threads: HashMap<OwnedEventId, i64>,
}

impl ReadMarks {
    fn read_up_to(&self, thread: &Thread) -> i64 {
        let threaded = match thread {
            None => self.main,
            Some(root) => self.threads.get(root).copied().unwrap_or(0),
        };
        self.unthreaded.max(threaded)
    }
}

/// What unread counting keeps between syncs.
#[derive(Debug, Clone)]
pub(crate) struct UnreadCache {
    /// The last counts by (user, room).
    counts: Bounded<(OwnedUserId, OwnedRoomId), UnreadCount>,
    /// Each user's parsed push rules, with the stored content they were parsed from.
    rules: Bounded<OwnedUserId, (Option<Arc<str>>, Arc<Ruleset>)>,
    /// Push-condition contexts by (user, state group): a state group never changes.
    contexts: Bounded<(OwnedUserId, i64), Arc<PushConditionRoomCtx>>,
    /// Joined members by state group.
    joined: Bounded<i64, usize>,
}

impl Default for UnreadCache {
    fn default() -> Self {
        Self {
            counts: Bounded::new(100_000),
            rules: Bounded::new(10_000),
            contexts: Bounded::new(10_000),
            joined: Bounded::new(10_000),
        }
    }
}

/// Counts for one sync pass: the user's push rules are read once, when the first room needs them.
pub(crate) struct Unread<'a> {
    syncer: &'a Syncer,
    user: &'a UserId,
    rules: OnceCell<Arc<Ruleset>>,
    /// Whose events never count (`m.ignored_user_list`).
    ignored: Arc<BTreeSet<OwnedUserId>>,
}

impl<'a> Unread<'a> {
    pub(crate) fn new(
        syncer: &'a Syncer,
        user: &'a UserId,
        ignored: Arc<BTreeSet<OwnedUserId>>,
    ) -> Self {
        Self {
            syncer,
            user,
            rules: OnceCell::new(),
            ignored,
        }
    }

    /// The room's `unread_notifications`, and with `per_thread` its
    /// `unread_thread_notifications` (threads with notifications only), as of stream
    /// position `upto`.
    pub(crate) async fn counts(
        &self,
        room: &RoomId,
        upto: i64,
        per_thread: bool,
    ) -> Result<RoomCounts, SyncError> {
        let counts = self.count(room, upto).await?;
        if !per_thread {
            let mut total = counts.main;
            for tally in counts.threads.values() {
                total.add(*tally);
            }
            return Ok(RoomCounts {
                room: total.count(),
                threads: BTreeMap::new(),
            });
        }
        Ok(RoomCounts {
            room: counts.main.count(),
            threads: counts
                .threads
                .iter()
                .filter(|(_, t)| t.notifications > 0)
                .map(|(root, t)| (root.clone(), t.count()))
                .collect(),
        })
    }

    async fn count(&self, room: &RoomId, upto: i64) -> Result<Counts, SyncError> {
        let read = self.read_receipts(room).await?;
        let rules = self.rules.get_or_try_init(|| self.ruleset()).await?;
        let key = (self.user.to_owned(), room.to_owned());
        let cached = self.syncer.unread_cache.counts.get(&key);
        // Only the events since the last count are new, as long as the user's read position
        // and push rules haven't changed: each sync then evaluates a handful of events.
        if let Some(cached) = cached.filter(|c| {
            c.read == read
                && c.upto <= upto
                && Arc::ptr_eq(&c.rules, rules)
                && c.ignored == self.ignored
        }) {
            let fresh = self
                .syncer
                .store
                .room_events_backwards(room, cached.upto, upto, SCAN_LIMIT)
                .await?;
            let heads: Vec<_> = fresh.iter().map(head).collect();
            let own = heads.iter().any(|h| {
                h.as_ref()
                    .is_some_and(|(sender, _)| sender == self.user.as_str())
            });
            let read_now = fresh
                .iter()
                .any(|e| read.iter().any(|(_, id)| *id == e.event_id));
            if !own && !read_now && (fresh.len() as i64) < SCAN_LIMIT {
                let mut counts = cached.counts;
                let mut unread = Vec::with_capacity(fresh.len());
                for (event, head) in fresh.iter().zip(&heads) {
                    let thread = self.thread_of(room, head.as_ref()).await?;
                    unread.push((event, thread));
                }
                self.evaluate(room, &unread, &mut counts).await?;
                self.remember(key, upto, read, counts.clone());
                return Ok(counts);
            }
        }
        let counts = self.recount(room, upto, &read).await?;
        self.remember(key, upto, read, counts.clone());
        Ok(counts)
    }

    fn remember(
        &self,
        key: (OwnedUserId, OwnedRoomId),
        upto: i64,
        read: ReadReceipts,
        counts: Counts,
    ) {
        let Some(rules) = self.rules.get().cloned() else {
            return;
        };
        self.syncer.unread_cache.counts.put(
            key,
            UnreadCount {
                upto,
                read,
                rules,
                ignored: self.ignored.clone(),
                counts,
            },
        );
    }

    /// Count from scratch over the newest events: those not read in their thread.
    async fn recount(
        &self,
        room: &RoomId,
        upto: i64,
        read: &[(String, OwnedEventId)],
    ) -> Result<Counts, SyncError> {
        let marks = self.read_marks(read).await?;
        let newest_first = self
            .syncer
            .store
            .room_events_backwards(room, 0, upto, SCAN_LIMIT)
            .await?;
        // Threads in which the user's own latest event has been passed: older ones are read.
        let mut written: HashSet<Thread> = HashSet::new();
        let mut unread = Vec::new();
        for event in &newest_first {
            let head = head(event);
            let thread = self.thread_of(room, head.as_ref()).await?;
            if head
                .as_ref()
                .is_some_and(|(sender, _)| sender == self.user.as_str())
            {
                written.insert(thread);
                continue;
            }
            if written.contains(&thread) || event.stream_ordering <= marks.read_up_to(&thread) {
                continue;
            }
            unread.push((event, thread));
        }
        let mut counts = Counts::default();
        self.evaluate(room, &unread, &mut counts).await?;
        Ok(counts)
    }

    /// The thread an event of the room belongs to.
    async fn thread_of(
        &self,
        room: &RoomId,
        event: Option<&EventHead>,
    ) -> Result<Thread, SyncError> {
        Ok(crate::threads::thread_of(&self.syncer.store, room, event).await?)
    }

    /// Where the user's read receipts point, as stream positions.
    async fn read_marks(&self, read: &[(String, OwnedEventId)]) -> Result<ReadMarks, SyncError> {
        let ids: Vec<OwnedEventId> = read.iter().map(|(_, id)| id.clone()).collect();
        let positions: HashMap<OwnedEventId, i64> = self
            .syncer
            .store
            .events(&ids)
            .await?
            .into_iter()
            .map(|e| (e.event_id, e.stream_ordering))
            .collect();
        let mut marks = ReadMarks::default();
        for (thread, id) in read {
            let Some(&at) = positions.get(id) else {
                continue;
            };
            let mark = match thread.as_str() {
                "" => &mut marks.unthreaded,
                "main" => &mut marks.main,
                root => match OwnedEventId::try_from(root) {
                    Ok(root) => marks.threads.entry(root).or_default(),
                    Err(_) => continue,
                },
            };
            *mark = (*mark).max(at);
        }
        Ok(marks)
    }

    /// The actions the user's push rules give each of these events of the room (newest first),
    /// in the room as it is after the newest.
    pub(crate) async fn actions_of(
        &self,
        room: &RoomId,
        events: &[&StoredEvent],
    ) -> Result<Vec<Vec<Action>>, SyncError> {
        let Some(newest) = events.first() else {
            return Ok(Vec::new());
        };
        let rules = self.rules.get_or_try_init(|| self.ruleset()).await?;
        let context = self
            .context(room, &newest.room_version, newest.state_group_after)
            .await?;
        let mut out = Vec::with_capacity(events.len());
        for event in events {
            out.push(match RawValue::from_string(event.json.clone()) {
                Ok(raw) => rules
                    .get_actions(&Raw::<Value>::from_json(raw), &context)
                    .await
                    .to_vec(),
                Err(_) => Vec::new(),
            });
        }
        Ok(out)
    }

    /// For each of these events of the room (newest first, all of them the newest events up to
    /// a point): whether the user has read it, by their receipts or a later event of their own
    /// in its thread.
    pub(crate) async fn read_flags(
        &self,
        room: &RoomId,
        newest_first: &[StoredEvent],
    ) -> Result<Vec<bool>, SyncError> {
        let read = self.read_receipts(room).await?;
        let marks = self.read_marks(&read).await?;
        let mut written: HashSet<Thread> = HashSet::new();
        let mut out = Vec::with_capacity(newest_first.len());
        for event in newest_first {
            let head = head(event);
            let thread = self.thread_of(room, head.as_ref()).await?;
            let own = head
                .as_ref()
                .is_some_and(|(sender, _)| sender == self.user.as_str());
            out.push(
                own || written.contains(&thread)
                    || event.stream_ordering <= marks.read_up_to(&thread),
            );
            if own {
                written.insert(thread);
            }
        }
        Ok(out)
    }

    /// Run unread events (newest first) through the user's push rules, adding what notifies to
    /// the counts of their threads.
    async fn evaluate(
        &self,
        room: &RoomId,
        unread: &[(&StoredEvent, Thread)],
        counts: &mut Counts,
    ) -> Result<(), SyncError> {
        let Some((newest, _)) = unread.first() else {
            return Ok(());
        };
        let rules = self.rules.get_or_try_init(|| self.ruleset()).await?;
        let context = self
            .context(room, &newest.room_version, newest.state_group_after)
            .await?;
        for (event, thread) in unread {
            if !self.ignored.is_empty()
                && head(event).is_some_and(|(sender, _)| {
                    self.ignored.iter().any(|u| u.as_str() == sender.as_str())
                })
            {
                continue;
            }
            let Ok(raw) = RawValue::from_string(event.json.clone()) else {
                continue;
            };
            let actions = rules
                .get_actions(&Raw::<Value>::from_json(raw), &context)
                .await;
            // Spec: the highlight count counts notifications that have the highlight tweak.
            if actions.iter().any(Action::should_notify) {
                let highlight = actions.iter().any(Action::is_highlight);
                counts.add(
                    thread,
                    Tally {
                        notifications: 1,
                        highlights: u64::from(highlight),
                    },
                );
            }
        }
        Ok(())
    }

    /// The user's `m.read` / `m.read.private` receipts in the room, with their threads.
    async fn read_receipts(&self, room: &RoomId) -> Result<ReadReceipts, SyncError> {
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
            .shared_account_data(self.user, None, push_rules::PUSH_RULES_TYPE)
            .await?;
        let cache = &self.syncer.unread_cache.rules;
        // The store hands out the same `Arc` while the stored rules are unchanged; a new one
        // with the same text only costs a parse.
        let unchanged = |from: &Option<Arc<str>>| match (from, &content) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a == b,
            (None, None) => true,
            _ => false,
        };
        if let Some((parsed_from, rules)) = cache.get(&self.user.to_owned())
            && unchanged(&parsed_from)
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

    /// How many members the state group has joined (shared by every user counting in it: a
    /// state group never changes).
    async fn joined_count(&self, state_group: i64, state: &StateIds) -> Result<usize, SyncError> {
        let cache = &self.syncer.unread_cache.joined;
        if let Some(count) = cache.get(&state_group) {
            return Ok(count);
        }
        let members: Vec<OwnedEventId> = state
            .iter()
            .filter(|((kind, _), _)| *kind == StateEventType::RoomMember)
            .map(|(_, id)| id.clone())
            .collect();
        let count = self
            .syncer
            .rooms
            .load_pdus(&members)
            .await?
            .values()
            .filter(|p| p.membership().as_deref() == Some("join"))
            .count();
        cache.put(state_group, count);
        Ok(count)
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

        let joined = self.joined_count(state_group, &state).await?;
        let display_name = get(&member_key)
            .and_then(|member| {
                member
                    .content_json()
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

/// Power levels for push conditions (`sender_notification_permission`), with the room's creators
/// for the room versions in which they outrank every level.
fn power_levels(
    rules: &AuthorizationRules,
    create: Option<&Arc<Pdu>>,
    levels: Option<&Arc<Pdu>>,
) -> PushConditionPowerLevelsCtx {
    let mut creators: Vec<OwnedUserId> = Vec::new();
    if let Some(create) = create {
        let content = create.content_json();
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
