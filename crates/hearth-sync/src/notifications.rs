//! `GET /notifications`: the events of the user's rooms that their push rules say notify
//! them, newest first, worked out from the push rules when asked (the way unread counts are)
//! rather than stored as events arrive.
//!
//! Each page looks at the newest [`SCAN_LIMIT`] events of each room before its token. When a
//! room has more, the page only goes down to the highest point any room's scan stopped at, and
//! its token continues from there, so nothing is skipped; a page may then be shorter than the
//! limit. Only events since the user's current join count (they were not notified of earlier
//! ones).

use std::sync::Arc;

use hearth_rooms::Pdu;
use hearth_store::StoredEvent;
use ruma::UserId;
use ruma::push::Action;
use serde_json::{Value, json};

use crate::threads::head;
use crate::unread::{SCAN_LIMIT, Unread};
use crate::{SyncError, Syncer};

/// One page of notifications.
#[derive(Debug)]
pub struct NotificationsPage {
    /// `Notification` objects, newest first.
    pub notifications: Vec<Value>,
    /// Where the next page starts, if there may be one.
    pub next_token: Option<String>,
}

struct Found {
    event: StoredEvent,
    actions: Vec<Action>,
    read: bool,
}

impl Syncer {
    /// Up to `limit` notifications older than stream position `before` (all when `None`);
    /// with `only_highlight`, only those that highlight.
    pub async fn notifications(
        &self,
        user: &UserId,
        before: Option<i64>,
        limit: usize,
        only_highlight: bool,
    ) -> Result<NotificationsPage, SyncError> {
        let before = before.unwrap_or_else(|| self.store.current_stream().saturating_add(1));
        // Nobody is notified of what people they ignore send.
        let ignored = crate::ignored::ignored_users(&self.store, user).await?;
        let unread = Unread::new(self, user, Arc::new(ignored.clone()));
        let memberships = self.store.memberships_of(user).await?;
        let mut found: Vec<Found> = Vec::new();
        // The highest position down to which every room was read completely.
        let mut cutoff = 0;
        for membership in memberships.iter().filter(|m| m.membership == "join") {
            let room = &membership.room_id;
            let newest_first = self
                .store
                .room_events_backwards(room, membership.stream_ordering, before - 1, SCAN_LIMIT)
                .await?;
            if newest_first.len() as i64 == SCAN_LIMIT
                && let Some(oldest) = newest_first.last()
            {
                cutoff = cutoff.max(oldest.stream_ordering);
            }
            let read = unread.read_flags(room, &newest_first).await?;
            let visible = self.rooms.visible_to(user, true, &newest_first).await?;
            let candidates: Vec<(&StoredEvent, bool)> = newest_first
                .iter()
                .zip(read)
                .zip(visible)
                .filter(|((event, _), visible)| {
                    *visible
                        && head(event).is_some_and(|(sender, _)| {
                            sender != user.as_str() && !ignored.iter().any(|i| i.as_str() == sender)
                        })
                })
                .map(|((event, read), _)| (event, read))
                .collect();
            let events: Vec<&StoredEvent> = candidates.iter().map(|(e, _)| *e).collect();
            let actions = unread.actions_of(room, &events).await?;
            for ((event, read), actions) in candidates.into_iter().zip(actions) {
                let notify = actions.iter().any(Action::should_notify);
                let highlight = actions.iter().any(Action::is_highlight);
                if notify && (highlight || !only_highlight) {
                    found.push(Found {
                        event: event.clone(),
                        actions,
                        read,
                    });
                }
            }
        }
        // Below the cutoff some room was not read: those results wait for the next page.
        found.retain(|f| f.event.stream_ordering >= cutoff);
        found.sort_by_key(|f| std::cmp::Reverse(f.event.stream_ordering));
        let more = found.len() > limit;
        found.truncate(limit);
        let next_token = if more {
            found.last().map(|f| f.event.stream_ordering.to_string())
        } else if cutoff > 0 {
            Some(cutoff.to_string())
        } else {
            None
        };
        let stored: Vec<StoredEvent> = found.iter().map(|f| f.event.clone()).collect();
        let pdus: Vec<Arc<Pdu>> = self.rooms.parse_stored(&stored)?;
        let events = self.rooms.client_events(&pdus).await?;
        let notifications = found
            .into_iter()
            .zip(events)
            .zip(&pdus)
            .map(|((f, event), pdu)| {
                json!({
                    "actions": f.actions,
                    "event": event,
                    "read": f.read,
                    "room_id": pdu.room(),
                    "ts": u64::from(pdu.origin_server_ts().get()),
                })
            })
            .collect();
        Ok(NotificationsPage {
            notifications,
            next_token,
        })
    }
}
