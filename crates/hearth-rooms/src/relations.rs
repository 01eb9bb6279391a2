//! Event relationships: what the append pipeline indexes (`content["m.relates_to"]` with a
//! `rel_type`), and the bundled aggregations (`unsigned["m.relations"]`) every client rendering
//! of room events gets — `/messages`, `/event`, `/context`, the relations and threads APIs and
//! the `/sync` timelines all go through [`Rooms::client_events_for`].
//!
//! Aggregated here, per the spec (v1.16): `m.thread` (latest event, count, participation),
//! `m.replace` (the most recent valid edit, as a whole event) and `m.reference` (a chunk of
//! ids). `m.annotation` is not aggregated by servers (the spec says so explicitly).
//!
//! NOTSPEC: children from ignored users are not left out of the aggregations yet, and
//! children are bounded by the reader's stream position rather than checked one by one
//! against history visibility.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use hearth_store::NewRelation;
use ruma::events::TimelineEventType;
use ruma::{OwnedEventId, OwnedRoomId, UserId};
use serde_json::{Value, json};

use crate::{Pdu, RoomError, Rooms};

pub const THREAD: &str = "m.thread";
pub const REPLACE: &str = "m.replace";
pub const REFERENCE: &str = "m.reference";

/// `(rel_type, parent)` of an event content's `m.relates_to`. Rich replies (only
/// `m.in_reply_to`) have no `rel_type` and are not relations in this sense.
pub fn relation_of(content: &Value) -> Option<(&str, OwnedEventId)> {
    let relates_to = content.get("m.relates_to")?;
    let rel_type = relates_to.get("rel_type")?.as_str()?;
    let parent = relates_to.get("event_id")?.as_str()?;
    let parent = OwnedEventId::try_from(parent).ok()?;
    Some((rel_type, parent))
}

/// [`relation_of`] for a PDU.
fn pdu_relation(pdu: &Pdu) -> Option<(String, OwnedEventId)> {
    let content: Value = serde_json::from_str(pdu.content().get()).ok()?;
    relation_of(&content).map(|(t, p)| (t.to_owned(), p))
}

/// Whether a PDU's content has an `m.relates_to` at all (a thread may not start at such an
/// event).
pub(crate) fn has_relates_to(pdu: &Pdu) -> bool {
    #[derive(serde::Deserialize)]
    struct Content<'a> {
        #[serde(rename = "m.relates_to", borrow)]
        relates_to: Option<&'a serde_json::value::RawValue>,
    }
    serde_json::from_str::<Content<'_>>(pdu.content().get()).is_ok_and(|c| c.relates_to.is_some())
}

/// The index row of a new event, if its content declares a relation.
pub(crate) fn new_relation(event_id: &OwnedEventId, content: &Value) -> Option<NewRelation> {
    relation_of(content).map(|(rel_type, parent)| NewRelation {
        event_id: event_id.clone(),
        relates_to: parent,
        rel_type: rel_type.to_owned(),
    })
}

/// Whom events are rendered for. Aggregations count only children at or before `upto` (what
/// the reader is being shown: the sync position, or their history horizon), and `m.thread`
/// says whether `user` took part.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    pub user: &'a UserId,
    pub upto: i64,
}

/// Non-state events grouped by room (aggregations are per room: a child in another room is no
/// child).
fn by_room(pdus: &[Arc<Pdu>]) -> BTreeMap<OwnedRoomId, Vec<OwnedEventId>> {
    let mut rooms: BTreeMap<OwnedRoomId, Vec<OwnedEventId>> = BTreeMap::new();
    for pdu in pdus.iter().filter(|p| p.state_key().is_none()) {
        rooms
            .entry(pdu.room().to_owned())
            .or_default()
            .push(pdu.owned_event_id().clone());
    }
    rooms
}

fn is_redacted(event: &Value) -> bool {
    event["unsigned"].get("redacted_because").is_some()
}

/// The edit is valid for `original` per "Validity of replacement events".
fn valid_edit(original: &Pdu, edit: &Pdu) -> bool {
    #[derive(serde::Deserialize)]
    struct Content<'a> {
        #[serde(rename = "m.new_content", borrow)]
        new_content: Option<&'a serde_json::value::RawValue>,
    }
    edit.sender() == original.sender()
        && edit.kind() == original.kind()
        && edit.state_key().is_none()
        && original.state_key().is_none()
        && serde_json::from_str::<Content<'_>>(edit.content().get())
            .ok()
            .and_then(|c| c.new_content)
            .is_some_and(|c| c.get().starts_with('{'))
}

impl Rooms {
    /// Events as `reader` sees them: [`Rooms::client_events`] (client format, redactions
    /// applied) plus the bundled aggregations of each event's children.
    pub async fn client_events_for(
        &self,
        reader: Reader<'_>,
        pdus: &[Arc<Pdu>],
    ) -> Result<Vec<Value>, RoomError> {
        let mut events = self.client_events(pdus).await?;
        self.redact_erased(reader, pdus, &mut events).await?;
        self.bundle_edits_and_references(reader, pdus, &mut events)
            .await?;
        self.bundle_threads(reader, pdus, &mut events).await?;
        Ok(events)
    }

    /// What erased users sent, as a redacted copy for a reader who was not in the room when it
    /// was sent (the spec's `erase` on deactivation: those who join afterwards do not see it).
    async fn redact_erased(
        &self,
        reader: Reader<'_>,
        pdus: &[Arc<Pdu>],
        events: &mut [Value],
    ) -> Result<(), RoomError> {
        let erased = self.store().erased_users().await?;
        if erased.is_empty() {
            return Ok(());
        }
        for (pdu, event) in pdus.iter().zip(events.iter_mut()) {
            if !erased.contains(pdu.sender()) || pdu.sender() == reader.user {
                continue;
            }
            let before = self.state_before(pdu.event_id()).await?;
            let joined = match before.get(&crate::member_key(reader.user)) {
                Some(id) => {
                    self.pdu(id).await?.and_then(|p| p.membership()).as_deref() == Some("join")
                }
                None => false,
            };
            if !joined {
                *event = pdu.redacted()?.to_client_event();
            }
        }
        Ok(())
    }

    /// `m.replace` and `m.reference` aggregations.
    async fn bundle_edits_and_references(
        &self,
        reader: Reader<'_>,
        pdus: &[Arc<Pdu>],
        events: &mut [Value],
    ) -> Result<(), RoomError> {
        let index: HashMap<&OwnedEventId, usize> = pdus
            .iter()
            .enumerate()
            .map(|(i, p)| (p.owned_event_id(), i))
            .collect();
        for (room, ids) in by_room(pdus) {
            let rows = self
                .store()
                .relations_of(&room, &ids, &[REFERENCE, REPLACE], reader.upto)
                .await?;
            // Candidate edits: by the original's sender, most recent first (by
            // origin_server_ts, then the larger event id).
            let mut edits: BTreeMap<&OwnedEventId, Vec<_>> = BTreeMap::new();
            for row in &rows {
                let Some(&i) = index.get(&row.relates_to) else {
                    continue;
                };
                if row.rel_type == REFERENCE {
                    let relations = &mut events[i]["unsigned"]["m.relations"];
                    match relations[REFERENCE]["chunk"].as_array_mut() {
                        Some(chunk) => chunk.push(json!({ "event_id": row.event_id })),
                        None => {
                            relations[REFERENCE] =
                                json!({ "chunk": [{ "event_id": row.event_id }] });
                        }
                    }
                    continue;
                }
                let original = &pdus[i];
                // An edited event that is redacted gets no edit bundled, nor does an edit.
                if is_redacted(&events[i])
                    || row.sender != original.sender()
                    || pdu_relation(original).is_some_and(|(t, _)| t == REPLACE)
                {
                    continue;
                }
                edits.entry(&row.relates_to).or_default().push(row);
            }
            if edits.is_empty() {
                continue;
            }
            let wanted: Vec<OwnedEventId> = edits
                .values()
                .flatten()
                .map(|r| r.event_id.clone())
                .collect();
            let loaded = self.load_pdus(&wanted).await?;
            for (parent, mut candidates) in edits {
                candidates.sort_by(|a, b| {
                    (b.origin_server_ts, &b.event_id).cmp(&(a.origin_server_ts, &a.event_id))
                });
                let i = index[parent];
                let latest = candidates
                    .iter()
                    .filter_map(|r| loaded.get(&r.event_id))
                    .find(|edit| valid_edit(&pdus[i], edit));
                if let Some(edit) = latest {
                    events[i]["unsigned"]["m.relations"][REPLACE] = edit.to_client_event();
                }
            }
        }
        Ok(())
    }

    /// `m.thread` aggregations; the latest event of a thread comes with its own edits and
    /// references bundled (it cannot be a thread root itself: it has an `m.relates_to`).
    async fn bundle_threads(
        &self,
        reader: Reader<'_>,
        pdus: &[Arc<Pdu>],
        events: &mut [Value],
    ) -> Result<(), RoomError> {
        let index: HashMap<&OwnedEventId, usize> = pdus
            .iter()
            .enumerate()
            .map(|(i, p)| (p.owned_event_id(), i))
            .collect();
        for (room, ids) in by_room(pdus) {
            let threads = self
                .store()
                .thread_summaries(&room, &ids, reader.upto, reader.user)
                .await?;
            if threads.is_empty() {
                continue;
            }
            let latest_ids: Vec<OwnedEventId> = threads.iter().map(|t| t.latest.clone()).collect();
            let loaded = self.load_pdus(&latest_ids).await?;
            let latest: Vec<Arc<Pdu>> = latest_ids
                .iter()
                .filter_map(|id| loaded.get(id).cloned())
                .collect();
            let mut rendered = self.client_events(&latest).await?;
            self.bundle_edits_and_references(reader, &latest, &mut rendered)
                .await?;
            let rendered: HashMap<&OwnedEventId, Value> = latest
                .iter()
                .map(|p| p.owned_event_id())
                .zip(rendered)
                .collect();
            for thread in &threads {
                let (Some(&i), Some(latest_event)) =
                    (index.get(&thread.root), rendered.get(&thread.latest))
                else {
                    continue;
                };
                let participated = thread.participated || pdus[i].sender() == reader.user;
                events[i]["unsigned"]["m.relations"][THREAD] = json!({
                    "latest_event": latest_event,
                    "count": thread.count,
                    "current_user_participated": participated,
                });
            }
        }
        Ok(())
    }
}

/// Whether an event may start a thread: the spec has servers refuse threads off events that
/// relate to something themselves.
pub(crate) fn check_thread_root(root: Option<&Pdu>) -> Result<(), RoomError> {
    match root {
        Some(root) if has_relates_to(root) => Err(RoomError::BadRelation(
            "a thread cannot start at an event that has an m.relates_to".into(),
        )),
        _ => Ok(()),
    }
}

/// The thread root a draft replies to, if it is an `m.thread` relation.
pub(crate) fn thread_parent(kind: &TimelineEventType, content: &Value) -> Option<OwnedEventId> {
    if *kind == TimelineEventType::RoomRedaction {
        return None;
    }
    match relation_of(content) {
        Some((THREAD, parent)) => Some(parent),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn relation_of_reads_rel_type_and_parent() {
        let thread = json!({"m.relates_to": {"rel_type": "m.thread", "event_id": "$root"}});
        assert_eq!(
            relation_of(&thread),
            Some(("m.thread", OwnedEventId::try_from("$root").unwrap()))
        );
        let reply = json!({"m.relates_to": {"m.in_reply_to": {"event_id": "$x"}}});
        assert_eq!(relation_of(&reply), None, "a plain reply is no relation");
        let bad = json!({"m.relates_to": {"rel_type": "m.replace", "event_id": "nope"}});
        assert_eq!(relation_of(&bad), None, "an invalid parent id is ignored");
        let bad = json!({"m.relates_to": {"rel_type": 5, "event_id": "$x"}});
        assert_eq!(relation_of(&bad), None);
        assert_eq!(relation_of(&json!({"body": "hi"})), None);
    }

    #[test]
    fn new_relation_names_the_child() {
        let child = OwnedEventId::try_from("$child").unwrap();
        let content = json!({"m.relates_to": {"rel_type": "m.reference", "event_id": "$p"}});
        let row = new_relation(&child, &content).unwrap();
        assert_eq!(
            (
                row.event_id.as_str(),
                row.relates_to.as_str(),
                row.rel_type.as_str()
            ),
            ("$child", "$p", "m.reference")
        );
    }
}
