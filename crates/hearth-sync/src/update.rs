//! One sync model, two renderings. A room's update for one device — its timeline window, the
//! state to send, its ephemeral events, account data, summary and counts — is worked out once
//! (by `/sync` in `rooms.rs`, by sliding sync in `sliding/room.rs`, each by its own rules of
//! what the client already has) as a [`RoomUpdate`], and rendered for either wire format: into
//! ruma's `sync_events::v5` types here, into `/sync`'s (ruma's `v3` shape) in `v2.rs`.

use ruma::api::client::sync::sync_events::v5;
use ruma::serde::Raw;
use ruma::{OwnedUserId, UInt};
use serde::Serialize;
use serde_json::{Value, json};

use crate::unread::RoomCounts;
use crate::{PaginationToken, SyncError};

/// A room's member counts and, for a room with neither a name nor a canonical alias, its heroes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Summary {
    pub(crate) joined: u64,
    pub(crate) invited: u64,
    pub(crate) heroes: Vec<OwnedUserId>,
}

/// What changed in one room for one device.
#[derive(Debug, Default)]
pub(crate) struct RoomUpdate {
    /// Timeline events in client format, oldest first.
    pub(crate) timeline: Vec<Value>,
    /// There were more events in the window than the timeline carries.
    pub(crate) limited: bool,
    /// Where history before the timeline starts.
    pub(crate) prev_batch: Option<PaginationToken>,
    /// How many of the timeline's last events are live (arrived since the client's last
    /// request); sliding sync only.
    pub(crate) num_live: Option<usize>,
    /// State events in client format: `/sync`'s state before the timeline, sliding sync's
    /// `required_state`.
    pub(crate) state: Vec<Value>,
    /// Who is typing now, when that changed.
    pub(crate) typing: Option<Vec<OwnedUserId>>,
    /// The `m.receipt` event of the receipts that changed.
    pub(crate) receipts: Option<Value>,
    /// Room account data that changed.
    pub(crate) account_data: Vec<Value>,
    /// Sent when the client may not have it (or membership moved).
    pub(crate) summary: Option<Summary>,
    /// Unread counts (joined rooms).
    pub(crate) counts: Option<RoomCounts>,
}

impl RoomUpdate {
    /// The `m.typing` event, if typing changed.
    pub(crate) fn typing_event(&self) -> Option<Value> {
        self.typing
            .as_ref()
            .map(|users| json!({ "type": "m.typing", "content": { "user_ids": users } }))
    }

    /// Into a room of a sliding sync response (which carries the room's description, set
    /// by the caller, besides).
    pub(crate) fn into_v5(self, out: &mut v5::response::Room) -> Result<(), SyncError> {
        out.timeline = raws(&self.timeline)?;
        out.required_state = raws(&self.state)?;
        out.limited = self.limited;
        out.prev_batch = self.prev_batch.map(|t| t.to_string());
        out.num_live = self.num_live.map(|n| UInt::new_saturating(n as u64));
        if let Some(summary) = &self.summary {
            out.joined_count = Some(UInt::new_saturating(summary.joined));
            out.invited_count = Some(UInt::new_saturating(summary.invited));
        }
        if let Some(counts) = self.counts {
            out.unread_notifications = counts.room;
        }
        Ok(())
    }
}

/// Events already in client format, as ruma's raw events.
pub(crate) fn raws<V: Serialize, T>(events: &[V]) -> Result<Vec<Raw<T>>, SyncError> {
    events.iter().map(raw).collect()
}

/// One event as a ruma raw event.
pub(crate) fn raw<V: Serialize, T>(event: &V) -> Result<Raw<T>, SyncError> {
    serde_json::value::to_raw_value(event)
        .map(Raw::from_json)
        .map_err(|e| SyncError::Store(hearth_store::StoreError::Corrupt(e.to_string())))
}
