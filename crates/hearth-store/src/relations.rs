//! The relations index (`event_relations`): children of an event, thread summaries and thread
//! roots, for the relations API and bundled aggregations. Rows are written by the event writer
//! with the events that declare them.

use ruma::{EventId, OwnedEventId, OwnedUserId, RoomId, UserId};
use sqlx::{QueryBuilder, Row};

use crate::db::with_reader;
use crate::events::{parse_event_id, stored_event};
use crate::recent::Mark;
use crate::{Store, StoreError, StoredEvent};

fn parse_user_id(s: String) -> Result<OwnedUserId, StoreError> {
    OwnedUserId::try_from(s.as_str())
        .map_err(|e| StoreError::Corrupt(format!("user id {s:?}: {e}")))
}

/// Largest `IN (...)` list per query, well below both engines' bind-parameter limits.
const IN_CHUNK: usize = 500;

/// Which children of an event to list.
#[derive(Debug, Clone)]
pub struct ChildrenQuery<'a> {
    pub room: &'a RoomId,
    pub parent: &'a EventId,
    /// Only relations of this `rel_type` (applied at every level when recursing).
    pub rel_type: Option<&'a str>,
    /// Only children of this event type (applied at every level when recursing).
    pub event_type: Option<&'a str>,
    /// 1: direct children only; more: children of children too, up to this many levels.
    pub depth: i64,
    /// Children with `after < stream_ordering < before`.
    pub after: i64,
    pub before: i64,
    pub limit: i64,
    /// Newest first when true, oldest first otherwise.
    pub backwards: bool,
}

/// A thread as bundled with its root: `m.thread` children as of some stream position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadSummary {
    pub root: OwnedEventId,
    pub count: i64,
    /// The newest child.
    pub latest: OwnedEventId,
    /// Whether the given user sent one of the children.
    pub participated: bool,
}

/// One child of an event, with what aggregations sort and check by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationRow {
    pub event_id: OwnedEventId,
    pub relates_to: OwnedEventId,
    pub rel_type: String,
    pub sender: OwnedUserId,
    pub origin_server_ts: i64,
    pub stream_ordering: i64,
}

/// The room and the optional `rel_type` / event type filters of one level of the tree.
macro_rules! push_filters {
    ($query:expr, $q:expr) => {{
        let (query, q) = ($query, $q);
        query.push(" AND r.room_id = ").push_bind(q.room.as_str());
        if let Some(rel_type) = q.rel_type {
            query.push(" AND r.rel_type = ").push_bind(rel_type);
        }
        if let Some(event_type) = q.event_type {
            query.push(" AND c.event_type = ").push_bind(event_type);
        }
    }};
}

impl Store {
    /// Children of an event (and, with `depth > 1`, their children), in stream order.
    pub async fn relation_children(
        &self,
        q: &ChildrenQuery<'_>,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let order = if q.backwards { "DESC" } else { "ASC" };
        with_reader!(&self.db, |pool| {
            // The filters apply at every level: a child reached only through a non-matching
            // intermediate event is not listed, as the spec asks.
            let mut query = QueryBuilder::new(
                "WITH RECURSIVE tree(event_id, level) AS (
                    SELECT r.event_id, 1 FROM event_relations r
                    JOIN events c ON c.event_id = r.event_id
                    WHERE r.relates_to = ",
            );
            query.push_bind(q.parent.as_str());
            push_filters!(&mut query, q);
            query.push(
                " UNION
                    SELECT r.event_id, t.level + 1 FROM event_relations r
                    JOIN tree t ON r.relates_to = t.event_id
                    JOIN events c ON c.event_id = r.event_id
                    WHERE t.level < ",
            );
            query.push_bind(q.depth);
            push_filters!(&mut query, q);
            query.push(
                ")
                SELECT DISTINCT e.stream_ordering, e.event_id, e.room_id, e.depth,
                       e.state_group_before, e.state_group_after, e.json, rm.room_version
                FROM tree t JOIN events e ON e.event_id = t.event_id
                JOIN rooms rm ON rm.room_id = e.room_id
                WHERE e.stream_ordering > ",
            );
            query
                .push_bind(q.after)
                .push(" AND e.stream_ordering < ")
                .push_bind(q.before)
                .push(format_args!(" ORDER BY e.stream_ordering {order} LIMIT "))
                .push_bind(q.limit);
            let rows = query.build().fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(stored_event!(row));
            }
            Ok(out)
        })
    }

    /// For each of these events that is a thread root: its thread as of `upto`.
    pub async fn thread_summaries(
        &self,
        room: &RoomId,
        roots: &[OwnedEventId],
        upto: i64,
        user: &UserId,
    ) -> Result<Vec<ThreadSummary>, StoreError> {
        let roots = self.caches.recent.maybe_marked(roots, Mark::Children);
        let mut out = Vec::new();
        for chunk in roots.chunks(IN_CHUNK) {
            with_reader!(&self.db, |pool| {
                let mut query = QueryBuilder::new(
                    "SELECT t.relates_to, t.n, t.mine, l.event_id AS latest FROM (
                        SELECT r.relates_to, COUNT(*) AS n, MAX(r.stream_ordering) AS latest,
                               CAST(MAX(CASE WHEN c.sender = ",
                );
                query
                    .push_bind(user.as_str())
                    .push(
                        " THEN 1 ELSE 0 END) AS BIGINT) AS mine
                        FROM event_relations r JOIN events c ON c.event_id = r.event_id
                        WHERE r.rel_type = 'm.thread' AND r.room_id = ",
                    )
                    .push_bind(room.as_str())
                    .push(" AND r.stream_ordering <= ")
                    .push_bind(upto)
                    .push(" AND r.relates_to IN (");
                let mut list = query.separated(", ");
                for id in chunk {
                    list.push_bind(id.as_str());
                }
                query.push(
                    ") GROUP BY r.relates_to
                    ) t JOIN events l ON l.stream_ordering = t.latest",
                );
                for row in query.build().fetch_all(pool).await? {
                    let mine: i64 = row.try_get("mine")?;
                    out.push(ThreadSummary {
                        root: parse_event_id(row.try_get("relates_to")?)?,
                        count: row.try_get("n")?,
                        latest: parse_event_id(row.try_get("latest")?)?,
                        participated: mine > 0,
                    });
                }
            });
        }
        Ok(out)
    }

    /// Children of these events with one of these `rel_type`s, as of `upto`, oldest first.
    pub async fn relations_of(
        &self,
        room: &RoomId,
        parents: &[OwnedEventId],
        rel_types: &[&str],
        upto: i64,
    ) -> Result<Vec<RelationRow>, StoreError> {
        let parents = self.caches.recent.maybe_marked(parents, Mark::Children);
        if parents.is_empty() || rel_types.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for chunk in parents.chunks(IN_CHUNK) {
            with_reader!(&self.db, |pool| {
                let mut query = QueryBuilder::new(
                    "SELECT r.event_id, r.relates_to, r.rel_type, r.stream_ordering, c.sender,
                            c.origin_server_ts
                     FROM event_relations r JOIN events c ON c.event_id = r.event_id
                     WHERE r.rel_type IN (",
                );
                let mut types = query.separated(", ");
                for rel_type in rel_types {
                    types.push_bind(*rel_type);
                }
                query
                    .push(") AND r.room_id = ")
                    .push_bind(room.as_str())
                    .push(" AND r.stream_ordering <= ")
                    .push_bind(upto)
                    .push(" AND r.relates_to IN (");
                let mut list = query.separated(", ");
                for id in chunk {
                    list.push_bind(id.as_str());
                }
                query.push(") ORDER BY r.stream_ordering");
                for row in query.build().fetch_all(pool).await? {
                    out.push(RelationRow {
                        event_id: parse_event_id(row.try_get("event_id")?)?,
                        relates_to: parse_event_id(row.try_get("relates_to")?)?,
                        rel_type: row.try_get("rel_type")?,
                        sender: parse_user_id(row.try_get("sender")?)?,
                        origin_server_ts: row.try_get("origin_server_ts")?,
                        stream_ordering: row.try_get("stream_ordering")?,
                    });
                }
            });
        }
        Ok(out)
    }

    /// Thread roots of a room, most recent activity first: `(root, stream position of its
    /// newest child)` for threads whose newest child (as of `upto`) is before `before`. With
    /// `participant`, only threads they started or replied in.
    pub async fn thread_roots(
        &self,
        room: &RoomId,
        upto: i64,
        before: i64,
        participant: Option<&UserId>,
        limit: i64,
    ) -> Result<Vec<(OwnedEventId, i64)>, StoreError> {
        with_reader!(&self.db, |pool| {
            let mut query = QueryBuilder::new(
                "SELECT r.relates_to, MAX(r.stream_ordering) AS latest
                 FROM event_relations r
                 JOIN events c ON c.event_id = r.event_id
                 JOIN events root ON root.event_id = r.relates_to AND root.room_id = r.room_id
                 WHERE r.rel_type = 'm.thread' AND r.room_id = ",
            );
            query
                .push_bind(room.as_str())
                .push(" AND r.stream_ordering <= ")
                .push_bind(upto)
                .push(" GROUP BY r.relates_to, root.sender HAVING MAX(r.stream_ordering) < ")
                .push_bind(before);
            if let Some(user) = participant {
                query
                    .push(" AND (root.sender = ")
                    .push_bind(user.as_str())
                    .push(" OR SUM(CASE WHEN c.sender = ")
                    .push_bind(user.as_str())
                    .push(" THEN 1 ELSE 0 END) > 0)");
            }
            query.push(" ORDER BY latest DESC LIMIT ").push_bind(limit);
            let rows = query.build().fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push((
                    parse_event_id(row.try_get("relates_to")?)?,
                    row.try_get("latest")?,
                ));
            }
            Ok(out)
        })
    }
}
