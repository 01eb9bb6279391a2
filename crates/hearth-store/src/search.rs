//! Full-text search over message bodies, room names and topics (`POST /search`). The event
//! writer indexes events as it commits them ([`entry`]); a redaction removes the entry.

use ruma::{OwnedEventId, RoomId};
use serde_json::Value;
use sqlx::{QueryBuilder, Row};

use crate::db::{Db, with_reader};
use crate::events::parse_event_id;
use crate::{Store, StoreError};

/// Search terms looked at per query.
const MAX_TERMS: usize = 16;

/// Words shorter than this match whole words only: a one-letter prefix would match most of
/// the index.
const MIN_PREFIX_CHARS: usize = 3;

fn is_prefix(word: &str) -> bool {
    word.chars().count() >= MIN_PREFIX_CHARS
}

/// The searchable `key` and text of an event, if it has one.
pub(crate) fn entry(event_type: &str, json: &str) -> Option<(&'static str, String)> {
    let (key, field) = match event_type {
        "m.room.message" => ("content.body", "body"),
        "m.room.name" => ("content.name", "name"),
        "m.room.topic" => ("content.topic", "topic"),
        _ => return None,
    };
    let pdu: Value = serde_json::from_str(json).ok()?;
    // PostgreSQL text cannot hold NUL.
    let text = pdu.get("content")?.get(field)?.as_str()?.replace('\0', "");
    Some((key, text))
}

/// How to order results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchOrder {
    /// Newest first.
    Recent,
    /// Best match first.
    Rank,
}

/// What to search for.
#[derive(Debug, Clone)]
pub struct SearchQuery<'a> {
    /// Words to find (each as a prefix, all of them).
    pub term: &'a str,
    pub rooms: &'a [&'a RoomId],
    /// `content.body`, `content.name`, `content.topic`.
    pub keys: &'a [&'a str],
    pub order: SearchOrder,
    /// Only events before this stream position.
    pub before: i64,
    pub offset: i64,
    pub limit: i64,
}

/// One match.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    pub event_id: OwnedEventId,
    pub stream: i64,
    /// Higher is better.
    pub rank: f64,
}

/// The words of a search term: runs of letters and digits.
pub fn search_words(term: &str) -> Vec<&str> {
    term.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(MAX_TERMS)
        .collect()
}

impl Store {
    /// Events matching every word of the term (as prefixes, from three letters) in the given
    /// rooms and keys.
    pub async fn search(&self, q: &SearchQuery<'_>) -> Result<Vec<SearchHit>, StoreError> {
        let words = search_words(q.term);
        if words.is_empty() || q.rooms.is_empty() || q.keys.is_empty() || q.limit <= 0 {
            return Ok(Vec::new());
        }
        let is_sqlite = matches!(self.db, Db::Sqlite { .. });
        with_reader!(&self.db, |pool| {
            let mut query = if is_sqlite {
                // Words are letters and digits only: quoting them is all the escaping needed.
                let term: Vec<String> = words
                    .iter()
                    .map(|w| format!("\"{w}\"{}", if is_prefix(w) { "*" } else { "" }))
                    .collect();
                let mut query = QueryBuilder::new(
                    "SELECT event_id, rowid AS stream, -bm25(event_search) AS rank
                     FROM event_search WHERE event_search MATCH ",
                );
                query.push_bind(term.join(" "));
                query
            } else {
                let term: Vec<String> = words
                    .iter()
                    .map(|w| format!("{w}{}", if is_prefix(w) { ":*" } else { "" }))
                    .collect();
                let mut query = QueryBuilder::new(
                    "SELECT event_id, stream, CAST(ts_rank(vector, q) AS DOUBLE PRECISION) AS rank
                     FROM event_search, to_tsquery('simple', ",
                );
                query
                    .push_bind(term.join(" & "))
                    .push(") q WHERE vector @@ q");
                query
            };
            query.push(" AND room_id IN (");
            let mut rooms = query.separated(", ");
            for room in q.rooms {
                rooms.push_bind(room.as_str());
            }
            query.push(") AND key IN (");
            let mut keys = query.separated(", ");
            for key in q.keys {
                keys.push_bind(*key);
            }
            let stream = if is_sqlite { "rowid" } else { "stream" };
            query
                .push(format_args!(") AND {stream} < "))
                .push_bind(q.before);
            match q.order {
                SearchOrder::Recent => query.push(format_args!(" ORDER BY {stream} DESC")),
                SearchOrder::Rank => query.push(format_args!(" ORDER BY rank DESC, {stream} DESC")),
            };
            query
                .push(" LIMIT ")
                .push_bind(q.limit)
                .push(" OFFSET ")
                .push_bind(q.offset);
            let rows = query.build().fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(SearchHit {
                    event_id: parse_event_id(row.try_get("event_id")?)?,
                    stream: row.try_get("stream")?,
                    rank: row.try_get("rank")?,
                });
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_and_words() {
        let body = r#"{"content":{"body":"Hello\u0000 world","msgtype":"m.text"}}"#;
        assert_eq!(
            entry("m.room.message", body),
            Some(("content.body", "Hello world".to_owned()))
        );
        assert_eq!(entry("m.room.member", body), None);
        assert_eq!(entry("m.room.name", r#"{"content":{"name":5}}"#), None);
        assert_eq!(
            search_words("\"quoted\" AND (drop*) tables; naïve"),
            ["quoted", "AND", "drop", "tables", "naïve"]
        );
    }
}
