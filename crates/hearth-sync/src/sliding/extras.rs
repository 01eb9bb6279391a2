//! The request fields of sliding sync that ruma's `v5` types do not carry: the list filters
//! `spaces`, `tags` and `not_tags` (MSC4186's `SlidingRoomFilter`) and `unsubscribe_rooms`
//! (MSC3575, which clients of the earlier format still send). The handler reads them from the
//! same body ruma parsed.

use std::collections::{BTreeMap, BTreeSet};

use ruma::OwnedRoomId;
use serde::Deserialize;

/// Most spaces, tags or unsubscriptions one list or request may name.
pub const MAX_NAMED: usize = 1_000;

/// The extra fields of one request.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RequestExtras {
    #[serde(default)]
    lists: BTreeMap<String, ListExtras>,
    /// Rooms the client no longer subscribes to: sent no more unless a list selects them, and
    /// sent whole if subscribed again.
    #[serde(default)]
    pub unsubscribe_rooms: BTreeSet<OwnedRoomId>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct ListExtras {
    #[serde(default)]
    filters: Option<ExtraFilters>,
}

/// A list's filters beyond ruma's.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct ExtraFilters {
    /// Only rooms that one of these spaces (that the user is joined to) names as a child.
    pub spaces: Option<BTreeSet<OwnedRoomId>>,
    /// Only rooms with one of these tags.
    pub tags: Option<BTreeSet<String>>,
    /// Never rooms with one of these tags (winning over `tags`).
    #[serde(default)]
    pub not_tags: BTreeSet<String>,
}

impl ExtraFilters {
    pub(crate) fn uses_tags(&self) -> bool {
        self.tags.is_some() || !self.not_tags.is_empty()
    }
}

/// Why the extra fields were refused.
#[derive(Debug, thiserror::Error)]
pub enum ExtrasError {
    /// A field of the wrong type (400 `M_BAD_JSON`).
    #[error("{0}")]
    BadJson(String),
    /// Past a limit (400 `M_INVALID_PARAM`).
    #[error("{0}")]
    TooMany(String),
}

impl RequestExtras {
    /// Read them from a request body (empty: none). A field of the wrong type is refused, as
    /// ruma refuses its own.
    pub fn from_body(body: &[u8]) -> Result<Self, ExtrasError> {
        if body.is_empty() {
            return Ok(Self::default());
        }
        let extras: Self =
            serde_json::from_slice(body).map_err(|e| ExtrasError::BadJson(e.to_string()))?;
        if extras.unsubscribe_rooms.len() > MAX_NAMED {
            return Err(ExtrasError::TooMany(format!(
                "at most {MAX_NAMED} unsubscribe_rooms"
            )));
        }
        for (name, list) in &extras.lists {
            if let Some(f) = &list.filters {
                let named = f.spaces.as_ref().map_or(0, BTreeSet::len)
                    + f.tags.as_ref().map_or(0, BTreeSet::len)
                    + f.not_tags.len();
                if named > MAX_NAMED {
                    return Err(ExtrasError::TooMany(format!(
                        "list {name}: at most {MAX_NAMED} spaces and tags in its filters"
                    )));
                }
            }
        }
        Ok(extras)
    }

    /// The extra filters of a list, if it has any.
    pub fn filters(&self, list: &str) -> Option<&ExtraFilters> {
        self.lists.get(list).and_then(|l| l.filters.as_ref())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_fields_ruma_leaves_out() {
        let body = br#"{
            "lists": {
                "all": { "ranges": [[0, 10]], "filters": { "tags": ["m.favourite"], "not_tags": ["m.lowpriority"] } },
                "space": { "filters": { "spaces": ["!s:h"] } },
                "plain": { "ranges": [[0, 1]] }
            },
            "unsubscribe_rooms": ["!r:h"]
        }"#;
        let extras = RequestExtras::from_body(body).unwrap();
        let all = extras.filters("all").unwrap();
        assert!(all.uses_tags());
        assert!(all.not_tags.contains("m.lowpriority"));
        assert_eq!(
            extras
                .filters("space")
                .unwrap()
                .spaces
                .as_ref()
                .unwrap()
                .len(),
            1
        );
        assert!(extras.filters("plain").is_none());
        assert_eq!(extras.unsubscribe_rooms.len(), 1);
        assert!(
            RequestExtras::from_body(b"")
                .unwrap()
                .unsubscribe_rooms
                .is_empty()
        );
    }

    #[test]
    fn refuses_wrong_types() {
        assert!(
            RequestExtras::from_body(br#"{"lists": {"a": {"filters": {"tags": 5}}}}"#).is_err()
        );
        assert!(RequestExtras::from_body(br#"{"unsubscribe_rooms": ["not a room"]}"#).is_err());
        let many: Vec<String> = (0..=MAX_NAMED).map(|n| format!("!r{n}:h")).collect();
        let body = serde_json::to_vec(&serde_json::json!({ "unsubscribe_rooms": many })).unwrap();
        assert!(matches!(
            RequestExtras::from_body(&body),
            Err(ExtrasError::TooMany(_))
        ));
    }
}
