//! Typing notifications and read receipts across servers (`m.typing`, `m.receipt` EDUs).
//!
//! Out: a local user's typing or public read receipt goes to the partners with members in the
//! room, queued per destination (at most [`MAX_QUEUED`], the oldest dropped) and sent with
//! the destination's next transaction. They are ephemeral: one that cannot be delivered is
//! dropped, not retried.
//!
//! In: each is checked against its origin — the user must be the origin's, joined to the
//! room, and the room's ACL must let the origin in — before it is applied (receipts stored
//! here, typing handed back to the caller, which owns the typing state).

use std::collections::BTreeMap;

use ruma::api::federation::transactions::edu::{
    Edu, ReceiptContent, ReceiptData, ReceiptMap, TypingContent,
};
use ruma::events::receipt::{Receipt, ReceiptThread};
use ruma::serde::Raw;
use ruma::{EventId, OwnedRoomId, OwnedUserId, RoomId, ServerName, UserId};

use crate::Federation;

/// EDUs waiting per destination.
pub const MAX_QUEUED: usize = 100;

/// A partner's user typing (or not) in a room of ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundTyping {
    pub room: OwnedRoomId,
    pub user: OwnedUserId,
    pub typing: bool,
}

impl Federation {
    /// Tell the partners in `room` that `user` (ours) is typing or stopped.
    pub async fn send_typing(&self, room: &RoomId, user: &UserId, typing: bool) {
        let edu = Edu::Typing(TypingContent::new(room.to_owned(), user.to_owned(), typing));
        self.send_ephemeral(room, edu).await;
    }

    /// Tell the partners in `room` that `user` (ours) read up to `event`.
    pub async fn send_read_receipt(
        &self,
        room: &RoomId,
        user: &UserId,
        event: &EventId,
        thread: Option<&str>,
    ) {
        let mut receipt = Receipt::new(ruma::MilliSecondsSinceUnixEpoch::now());
        receipt.thread = match thread {
            None => ReceiptThread::Unthreaded,
            Some("main") => ReceiptThread::Main,
            Some(root) => match ruma::OwnedEventId::try_from(root) {
                Ok(root) => ReceiptThread::Thread(root),
                Err(_) => return,
            },
        };
        let data = ReceiptData::new(receipt, vec![event.to_owned()]);
        let map = ReceiptMap::new(BTreeMap::from([(user.to_owned(), data)]));
        let edu = Edu::Receipt(ReceiptContent::new(BTreeMap::from([(
            room.to_owned(),
            map,
        )])));
        self.send_ephemeral(room, edu).await;
    }

    async fn send_ephemeral(&self, room: &RoomId, edu: Edu) {
        let Ok(raw) = Raw::new(&edu) else { return };
        let own = self.policy().own_name();
        let servers = match self.inner.store.servers_in_room(room).await {
            Ok(servers) => servers,
            Err(e) => {
                tracing::debug!(%room, error = %e, "cannot list the room's servers");
                return;
            }
        };
        let now = *self.inner.rooms.subscribe().borrow();
        for server in servers
            .iter()
            .filter(|s| *s != own && self.policy().allows(s))
        {
            {
                let mut queues = self
                    .inner
                    .destinations
                    .edus
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                let queue = queues.entry(server.clone()).or_default();
                if queue.len() >= MAX_QUEUED {
                    queue.pop_front();
                }
                queue.push_back(raw.clone());
            }
            self.wake(server, now);
        }
    }

    /// The EDUs waiting for `destination`, at most `limit`.
    pub(crate) fn take_edus(&self, destination: &ServerName, limit: usize) -> Vec<Raw<Edu>> {
        let mut queues = self
            .inner
            .destinations
            .edus
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let Some(queue) = queues.get_mut(destination) else {
            return Vec::new();
        };
        let n = queue.len().min(limit);
        queue.drain(..n).collect()
    }

    /// Whether `user` may speak in `room` for `origin`: the origin's, joined, not refused by
    /// the room's ACL.
    async fn may_speak(&self, origin: &ServerName, room: &RoomId, user: &UserId) -> bool {
        if user.server_name() != origin {
            return false;
        }
        let joined = matches!(
            self.inner.store.membership(room, user).await,
            Ok(Some(m)) if m.membership == "join"
        );
        joined && self.acl_allows(room, origin).await.unwrap_or(false)
    }

    /// A typing EDU from `origin`, if it may be applied.
    pub(crate) async fn inbound_typing(
        &self,
        origin: &ServerName,
        content: TypingContent,
    ) -> Option<InboundTyping> {
        if !self
            .may_speak(origin, &content.room_id, &content.user_id)
            .await
        {
            tracing::debug!(%origin, user = %content.user_id, room = %content.room_id, "typing EDU refused");
            return None;
        }
        Some(InboundTyping {
            room: content.room_id,
            user: content.user_id,
            typing: content.typing,
        })
    }

    /// A receipt EDU from `origin`: each receipt of a user of the origin, joined, for an event
    /// of the room, stored.
    pub(crate) async fn inbound_receipts(&self, origin: &ServerName, content: ReceiptContent) {
        for (room, map) in content.receipts {
            for (user, data) in map.read {
                if !self.may_speak(origin, &room, &user).await {
                    tracing::debug!(%origin, %user, %room, "receipt EDU refused");
                    continue;
                }
                let Some(event) = data.event_ids.last() else {
                    continue;
                };
                match self.inner.store.event(event).await {
                    Ok(Some(stored)) if stored.room_id == room => {}
                    _ => continue,
                }
                let thread = match &data.data.thread {
                    ReceiptThread::Main => Some("main".to_owned()),
                    ReceiptThread::Thread(id) => Some(id.to_string()),
                    _ => None,
                };
                let ts = data.data.ts.map_or_else(
                    || i64::from(ruma::MilliSecondsSinceUnixEpoch::now().get()),
                    |t| i64::from(t.get()),
                );
                if let Err(e) = self
                    .inner
                    .store
                    .set_receipt(&room, &user, "m.read", thread.as_deref(), event, ts)
                    .await
                {
                    tracing::warn!(%room, %user, error = %e, "cannot store a partner's receipt");
                }
            }
        }
    }
}
