//! What `/sync` applies of a client's filter, and the event type patterns filters use.

use ruma::api::client::filter::{FilterDefinition, LazyLoadOptions};
use ruma::{OwnedRoomId, OwnedUserId};

/// The most timeline events per room one sync returns, whatever the filter asks.
pub const MAX_TIMELINE_LIMIT: usize = 500;

/// The part of a sync filter Hearth applies.
#[derive(Debug, Clone)]
pub struct SyncFilter {
    /// Most timeline events per room (default 10).
    pub timeline_limit: usize,
    /// Send only the member events of the timeline's senders (and the user's own, and the
    /// heroes').
    pub lazy_load_members: bool,
    /// With `lazy_load_members`: send them even when the device was sent them before.
    pub include_redundant_members: bool,
    /// Include rooms the user has left.
    pub include_leave: bool,
    /// Only these rooms, if set.
    pub rooms: Option<Vec<OwnedRoomId>>,
    /// Never these rooms.
    pub not_rooms: Vec<OwnedRoomId>,
    /// Whose presence to send: nobody's when `None`.
    pub presence: Option<SenderFilter>,
    /// Send notification counts per thread (`unread_thread_notifications`), the room's own
    /// counts then covering the main timeline only.
    pub unread_thread_notifications: bool,
}

/// Which senders' events a filter lets through.
#[derive(Debug, Clone, Default)]
pub struct SenderFilter {
    /// Only these, if set.
    pub senders: Option<Vec<OwnedUserId>>,
    /// Never these.
    pub not_senders: Vec<OwnedUserId>,
}

impl SenderFilter {
    pub(crate) fn wants(&self, user: &ruma::UserId) -> bool {
        !self.not_senders.iter().any(|u| u == user)
            && self
                .senders
                .as_ref()
                .is_none_or(|only| only.iter().any(|u| u == user))
    }
}

impl Default for SyncFilter {
    fn default() -> Self {
        Self {
            timeline_limit: 10,
            lazy_load_members: false,
            include_redundant_members: false,
            include_leave: false,
            rooms: None,
            not_rooms: Vec::new(),
            presence: Some(SenderFilter::default()),
            unread_thread_notifications: false,
        }
    }
}

impl SyncFilter {
    pub(crate) fn wants(&self, room: &OwnedRoomId) -> bool {
        !self.not_rooms.contains(room) && self.rooms.as_ref().is_none_or(|only| only.contains(room))
    }

    /// What `/sync` applies of a filter definition.
    pub fn from_definition(definition: &FilterDefinition) -> Self {
        let room = &definition.room;
        let lazy = |options: &LazyLoadOptions| matches!(options, LazyLoadOptions::Enabled { .. });
        let redundant = |options: &LazyLoadOptions| {
            matches!(
                options,
                LazyLoadOptions::Enabled {
                    include_redundant_members: true
                }
            )
        };
        SyncFilter {
            timeline_limit: room
                .timeline
                .limit
                .map_or(Self::default().timeline_limit, |l| {
                    usize::try_from(u64::from(l)).unwrap_or(usize::MAX)
                })
                .min(MAX_TIMELINE_LIMIT),
            lazy_load_members: lazy(&room.state.lazy_load_options)
                || lazy(&room.timeline.lazy_load_options),
            include_redundant_members: redundant(&room.state.lazy_load_options)
                || redundant(&room.timeline.lazy_load_options),
            include_leave: room.include_leave,
            rooms: room.rooms.clone(),
            not_rooms: room.not_rooms.clone(),
            presence: presence_filter(&definition.presence),
            unread_thread_notifications: room.timeline.unread_thread_notifications,
        }
    }
}

/// Whose `m.presence` the filter lets through, or `None` when it filters presence out.
fn presence_filter(filter: &ruma::api::client::filter::Filter) -> Option<SenderFilter> {
    const PRESENCE: &str = "m.presence";
    let allowed = filter
        .types
        .as_ref()
        .is_none_or(|types| types.iter().any(|t| type_matches(t, PRESENCE)))
        && !filter.not_types.iter().any(|t| type_matches(t, PRESENCE))
        && filter.limit.is_none_or(|l| l > ruma::UInt::MIN);
    allowed.then(|| SenderFilter {
        senders: filter.senders.clone(),
        not_senders: filter.not_senders.clone(),
    })
}

/// Longest filter pattern looked at: event types are at most 255 bytes, so a longer pattern
/// could only match through a long run of `*`.
const MAX_PATTERN: usize = 1024;

/// An event type filter entry: `*` matches any run of characters. Matched without recursion
/// and in at most pattern x type steps, whatever a (stored, hostile) filter holds.
pub fn type_matches(pattern: &str, kind: &str) -> bool {
    if pattern.len() > MAX_PATTERN {
        return false;
    }
    // Byte-wise is exact for UTF-8: `*` never occurs inside a multi-byte character.
    let (pattern, kind) = (pattern.as_bytes(), kind.as_bytes());
    let (mut p, mut k) = (0, 0);
    // The last `*` seen and the position in `kind` it is currently taken to match up to.
    let mut star: Option<(usize, usize)> = None;
    while k < kind.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, k));
                p += 1;
            }
            Some(&c) if c == kind[k] => {
                p += 1;
                k += 1;
            }
            _ => match star {
                // Let the `*` swallow one more character and try again after it.
                Some((at, upto)) => {
                    star = Some((at, upto + 1));
                    p = at + 1;
                    k = upto + 1;
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == b'*')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    #[test]
    fn presence_can_be_filtered_out() {
        let filter = |json: serde_json::Value| {
            let definition: FilterDefinition =
                serde_json::from_value(serde_json::json!({ "presence": json })).unwrap();
            SyncFilter::from_definition(&definition).presence
        };
        assert!(filter(serde_json::json!({})).is_some());
        assert!(filter(serde_json::json!({"types": []})).is_none());
        assert!(filter(serde_json::json!({"not_types": ["*"]})).is_none());
        assert!(filter(serde_json::json!({"limit": 0})).is_none());
        assert!(filter(serde_json::json!({"types": ["m.*"]})).is_some());
    }

    #[test]
    fn event_type_patterns() {
        for (pattern, matches) in [
            ("m.presence", true),
            ("*", true),
            ("m.*", true),
            ("*.presence", true),
            ("m.*ence", true),
            ("m.room.*", false),
            ("m.presenc", false),
            ("*x*", false),
            ("**m.presence**", true),
            ("m.*.*", false),
            ("*.*e", true),
        ] {
            assert_eq!(type_matches(pattern, "m.presence"), matches, "{pattern}");
        }
        // A hostile pattern neither recurses nor takes long.
        let hostile = format!("{}x", "*".repeat(100_000));
        assert!(!type_matches(&hostile, "m.presence"));
        let hostile = format!("{}x", "*a".repeat(500));
        assert!(!type_matches(&hostile, &"a".repeat(255)));
    }
}
