//! Room tags, kept as the room's `m.tag` account data (`{"tags": {name: {order}}}`), so that
//! `/sync` delivers them with the rest of the account data.

pub(crate) mod create_tag;
pub(crate) mod delete_tag;
pub(crate) mod get_tags;

use ruma::events::tag::{TagInfo, Tags};
use serde_json::{Map, Value};

/// The account-data type tags live in.
pub(crate) const TAG_TYPE: &str = "m.tag";

/// The `tags` object of stored `m.tag` content; empty when there is none or it is malformed
/// (a client may have written `m.tag` through the generic account-data endpoint).
pub(crate) fn tag_map(content: Option<&str>) -> Map<String, Value> {
    let content: Option<Value> = content.and_then(|c| serde_json::from_str(c).ok());
    match content {
        Some(Value::Object(mut object)) => match object.remove("tags") {
            Some(Value::Object(tags)) => tags,
            _ => Map::new(),
        },
        _ => Map::new(),
    }
}

/// `m.tag` content holding these tags.
pub(crate) fn tag_content(tags: Map<String, Value>) -> String {
    let mut content = Map::new();
    content.insert("tags".into(), Value::Object(tags));
    Value::Object(content).to_string()
}

/// The tags as ruma types; entries that are not valid tag info are left out.
pub(crate) fn parse_tags(tags: Map<String, Value>) -> Tags {
    tags.into_iter()
        .filter_map(|(name, info)| {
            let info: TagInfo = serde_json::from_value(info).ok()?;
            Some((name.into(), info))
        })
        .collect()
}
