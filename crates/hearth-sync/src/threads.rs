//! Which thread an event belongs to, for notification counts and threaded receipts (spec:
//! "Threaded read receipts"): the thread its `m.thread` relation names, or that of the event it
//! relates to otherwise (up to [`THREAD_HOPS`] relations away). Everything else is in the main
//! timeline, thread roots and events relating to them included.
//!
//! A thread is only a thread if its root is an event of the same room that does not relate to
//! anything itself (the pipeline refuses to start a thread anywhere else); an `m.thread`
//! relation to anything else — an unknown event, another room's — counts in the main timeline,
//! where receipts can reach it.

use std::borrow::Cow;

use hearth_store::{Store, StoreError, StoredEvent};
use ruma::{OwnedEventId, RoomId};
use serde::Deserialize;
use serde_json::value::RawValue;

/// Relations followed to find an event's thread (the spec recommends three).
pub const THREAD_HOPS: usize = 3;

/// The thread an event counts in: `None` for the main timeline, else the thread root.
pub type Thread = Option<OwnedEventId>;

/// What threading needs of a stored PDU: its sender and relation.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow)]
    sender: Cow<'a, str>,
    #[serde(default, borrow)]
    content: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Relates<'a> {
    #[serde(rename = "m.relates_to", borrow)]
    relates_to: Relation<'a>,
}

#[derive(Deserialize)]
struct Relation<'a> {
    #[serde(borrow)]
    rel_type: Cow<'a, str>,
    #[serde(borrow)]
    event_id: Cow<'a, str>,
}

/// A stored PDU's sender and `(rel_type, parent)`.
pub type EventHead = (String, Option<(String, OwnedEventId)>);

/// The [`EventHead`] of a stored PDU; `None` if it is unreadable.
pub fn head(event: &StoredEvent) -> Option<EventHead> {
    let head: Head<'_> = serde_json::from_str(&event.json).ok()?;
    let relation = head
        .content
        .and_then(|c| serde_json::from_str::<Relates<'_>>(c.get()).ok())
        .and_then(|r| {
            let parent = OwnedEventId::try_from(&*r.relates_to.event_id).ok()?;
            Some((r.relates_to.rel_type.into_owned(), parent))
        });
    Some((head.sender.into_owned(), relation))
}

/// The thread of an event of `room`, given its [`EventHead`].
pub async fn thread_of(
    store: &Store,
    room: &RoomId,
    event: Option<&EventHead>,
) -> Result<Thread, StoreError> {
    let mut relation = event.and_then(|(_, r)| r.clone());
    for _ in 0..THREAD_HOPS {
        let Some((rel_type, parent)) = relation else {
            return Ok(None);
        };
        // Every event on the way must be of this room.
        let Some(parent_event) = store.event(&parent).await?.filter(|p| p.room_id == room) else {
            return Ok(None);
        };
        let parent_relation = head(&parent_event).and_then(|(_, r)| r);
        if rel_type == "m.thread" {
            // A root relates to nothing itself.
            return Ok(parent_relation.is_none().then_some(parent));
        }
        relation = parent_relation;
    }
    Ok(None)
}

/// The thread of a stored event of `room`.
pub async fn thread_of_event(
    store: &Store,
    room: &RoomId,
    event: &StoredEvent,
) -> Result<Thread, StoreError> {
    thread_of(store, room, head(event).as_ref()).await
}
