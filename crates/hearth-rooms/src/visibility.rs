//! History visibility: which events a user may see, per the spec's rules, evaluated against the
//! state before each event (cached per state group, so a run of messages costs one lookup).

use std::collections::HashMap;
use std::sync::Arc;

use hearth_store::StoredEvent;
use ruma::events::{StateEventType, TimelineEventType};
use ruma::{OwnedEventId, UserId};

use crate::{Pdu, RoomError, Rooms};

/// What the state before an event says about one user.
#[derive(Clone)]
struct Before {
    visibility: String,
    membership: Option<String>,
}

impl Rooms {
    /// For each event, whether `user` may see it. `currently_joined` is the user's membership
    /// now, which the `shared` setting consults.
    pub async fn visible_to(
        &self,
        user: &UserId,
        currently_joined: bool,
        events: &[StoredEvent],
    ) -> Result<Vec<bool>, RoomError> {
        let mut by_group: HashMap<i64, Before> = HashMap::new();
        let mut out = Vec::with_capacity(events.len());
        for event in events {
            let before = match by_group.get(&event.state_group_before) {
                Some(before) => before.clone(),
                None => {
                    let before = self.before(user, event.state_group_before).await?;
                    by_group.insert(event.state_group_before, before.clone());
                    before
                }
            };
            let membership = before.membership.as_deref();
            let visible = match before.visibility.as_str() {
                "world_readable" => true,
                _ if membership == Some("join") => true,
                "shared" => currently_joined,
                "invited" => membership == Some("invite"),
                _ => false,
            };
            out.push(visible);
        }
        Ok(out)
    }

    async fn before(&self, user: &UserId, group: i64) -> Result<Before, RoomError> {
        let rows = self.store().state_group(group).await?;
        let visibility_id = rows.get(&("m.room.history_visibility".to_owned(), String::new()));
        let member_id = rows.get(&("m.room.member".to_owned(), user.to_string()));
        let ids: Vec<OwnedEventId> = visibility_id
            .into_iter()
            .chain(member_id)
            .cloned()
            .collect();
        let pdus = self.load_pdus(&ids).await?;
        let visibility = visibility_id
            .and_then(|id| pdus.get(id))
            .and_then(history_visibility)
            // The spec's default when the room has no history_visibility event.
            .unwrap_or_else(|| "shared".to_owned());
        let membership = member_id
            .and_then(|id| pdus.get(id))
            .and_then(|p| p.membership());
        Ok(Before {
            visibility,
            membership,
        })
    }
}

fn history_visibility(pdu: &Arc<Pdu>) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Content {
        history_visibility: String,
    }
    serde_json::from_str::<Content>(pdu.content().get())
        .ok()
        .map(|c| c.history_visibility)
}

/// A user always sees their own membership events (the join that starts their view included).
pub fn is_own_membership(pdu: &Pdu, user: &UserId) -> bool {
    *pdu.kind() == TimelineEventType::RoomMember && pdu.state_key() == Some(user.as_str())
}

/// `(type, key)` of the user's member event, for state lookups.
pub fn member_key(user: &UserId) -> (StateEventType, String) {
    (StateEventType::RoomMember, user.to_string())
}
