//! Reads over the event graph: events, edges, auth chains, extremities, transaction ids.

use ruma::{EventId, OwnedEventId, OwnedRoomId, RoomId, RoomVersionId};
use sqlx::{QueryBuilder, Row};

use crate::db::{Db, with_reader};
use crate::{RoomHead, StoreError, StoredEvent, TxnKey};

/// The columns every event read selects, for [`stored_event!`] (with `events e JOIN rooms r`).
macro_rules! event_columns {
    () => {
        "e.stream_ordering, e.event_id, e.room_id, e.depth, e.state_group_before,
         e.state_group_after, e.json, r.room_version"
    };
}

/// A [`StoredEvent`] from a row selected with [`event_columns!`].
macro_rules! stored_event {
    ($row:expr) => {{
        let row = &$row;
        StoredEvent {
            stream_ordering: row.try_get("stream_ordering")?,
            room_version: $crate::events::parse_version(row.try_get("room_version")?)?,
            event_id: $crate::events::parse_event_id(row.try_get("event_id")?)?,
            room_id: $crate::events::parse_room_id(row.try_get("room_id")?)?,
            depth: row.try_get("depth")?,
            state_group_before: row.try_get("state_group_before")?,
            state_group_after: row.try_get("state_group_after")?,
            json: row.try_get("json")?,
        }
    }};
}

pub(crate) use {event_columns, stored_event};

pub(crate) fn parse_event_id(s: String) -> Result<OwnedEventId, StoreError> {
    OwnedEventId::try_from(s.as_str())
        .map_err(|e| StoreError::Corrupt(format!("event id {s:?}: {e}")))
}

pub(crate) fn parse_version(s: String) -> Result<RoomVersionId, StoreError> {
    RoomVersionId::try_from(s.as_str())
        .map_err(|e| StoreError::Corrupt(format!("room version {s:?}: {e}")))
}

pub(crate) fn parse_room_id(s: String) -> Result<OwnedRoomId, StoreError> {
    OwnedRoomId::try_from(s.as_str())
        .map_err(|e| StoreError::Corrupt(format!("room id {s:?}: {e}")))
}

pub(crate) async fn max_stream(db: &Db) -> Result<i64, StoreError> {
    with_reader!(db, |pool| {
        // Memberships of rooms we are not in take positions of the event stream too.
        let max: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(m) FROM (SELECT MAX(stream_ordering) AS m FROM events
             UNION ALL SELECT MAX(stream_ordering) AS m FROM outside_memberships) AS positions",
        )
        .fetch_one(pool)
        .await?;
        Ok(max.unwrap_or(0))
    })
}

pub(crate) async fn room_head(db: &Db, room_id: &RoomId) -> Result<Option<RoomHead>, StoreError> {
    with_reader!(db, |pool| {
        let Some(row) = sqlx::query(
            "SELECT r.room_version, r.current_state_group, g.chain_len FROM rooms r
             JOIN state_groups g ON g.id = r.current_state_group WHERE r.room_id = $1",
        )
        .bind(room_id.as_str())
        .fetch_optional(pool)
        .await?
        else {
            return Ok(None);
        };
        let room_version = parse_version(row.try_get("room_version")?)?;
        let rows = sqlx::query(
            "SELECT e.event_id, e.depth FROM forward_extremities f
             JOIN events e ON e.event_id = f.event_id
             WHERE f.room_id = $1 ORDER BY e.depth, e.event_id",
        )
        .bind(room_id.as_str())
        .fetch_all(pool)
        .await?;
        let mut extremities = Vec::with_capacity(rows.len());
        for row in rows {
            extremities.push((
                parse_event_id(row.try_get("event_id")?)?,
                row.try_get("depth")?,
            ));
        }
        Ok(Some(RoomHead {
            room_version,
            current_state_group: row.try_get("current_state_group")?,
            current_chain_len: row.try_get("chain_len")?,
            extremities,
        }))
    })
}

pub(crate) async fn by_ids(db: &Db, ids: &[OwnedEventId]) -> Result<Vec<StoredEvent>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::with_capacity(ids.len());
    // Bounded IN lists keep us under both engines' bind-parameter limits.
    for chunk in ids.chunks(500) {
        with_reader!(db, |pool| {
            let mut query = QueryBuilder::new(concat!(
                "SELECT ",
                event_columns!(),
                " FROM events e JOIN rooms r ON r.room_id = e.room_id WHERE e.event_id IN ("
            ));
            let mut list = query.separated(", ");
            for id in chunk {
                list.push_bind(id.as_str());
            }
            query.push(")");
            for row in query.build().fetch_all(pool).await? {
                out.push(stored_event!(row));
            }
        });
    }
    Ok(out)
}

pub(crate) async fn state_groups_of(
    db: &Db,
    event_id: &EventId,
) -> Result<Option<(i64, i64)>, StoreError> {
    with_reader!(db, |pool| {
        let row = sqlx::query(
            "SELECT state_group_before, state_group_after FROM events WHERE event_id = $1",
        )
        .bind(event_id.as_str())
        .fetch_optional(pool)
        .await?;
        match row {
            Some(row) => Ok(Some((row.try_get(0)?, row.try_get(1)?))),
            None => Ok(None),
        }
    })
}

pub(crate) async fn auth_chain(
    db: &Db,
    ids: &[OwnedEventId],
) -> Result<Vec<OwnedEventId>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    with_reader!(db, |pool| {
        let mut query = QueryBuilder::new(
            "WITH RECURSIVE chain(event_id) AS (
                SELECT auth_event_id FROM event_auth WHERE event_id IN (",
        );
        let mut list = query.separated(", ");
        for id in ids {
            list.push_bind(id.as_str());
        }
        query.push(
            ")
                UNION
                SELECT a.auth_event_id FROM event_auth a JOIN chain c ON a.event_id = c.event_id
            )
            SELECT event_id FROM chain",
        );
        let rows: Vec<String> = query.build_query_scalar().fetch_all(pool).await?;
        rows.into_iter().map(parse_event_id).collect()
    })
}

pub(crate) async fn prev_events(db: &Db, id: &EventId) -> Result<Vec<OwnedEventId>, StoreError> {
    with_reader!(db, |pool| {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT prev_event_id FROM event_edges WHERE event_id = $1 ORDER BY prev_event_id",
        )
        .bind(id.as_str())
        .fetch_all(pool)
        .await?;
        rows.into_iter().map(parse_event_id).collect()
    })
}

pub(crate) async fn room_timeline(
    db: &Db,
    room_id: &RoomId,
) -> Result<Vec<(i64, OwnedEventId, i64)>, StoreError> {
    with_reader!(db, |pool| {
        let rows = sqlx::query(
            "SELECT stream_ordering, event_id, depth FROM events
             WHERE room_id = $1 ORDER BY stream_ordering",
        )
        .bind(room_id.as_str())
        .fetch_all(pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push((
                row.try_get(0)?,
                parse_event_id(row.try_get(1)?)?,
                row.try_get(2)?,
            ));
        }
        Ok(out)
    })
}

pub(crate) async fn txn_event(db: &Db, key: &TxnKey) -> Result<Option<OwnedEventId>, StoreError> {
    with_reader!(db, |pool| {
        let id: Option<String> = sqlx::query_scalar(
            "SELECT event_id FROM transaction_ids
             WHERE user_id = $1 AND device_id = $2 AND room_id = $3 AND endpoint = $4
               AND txn_id = $5",
        )
        .bind(key.user_id.as_str())
        .bind(key.device_id.as_str())
        .bind(key.room_id.as_str())
        .bind(&key.endpoint)
        .bind(key.txn_id.as_str())
        .fetch_optional(pool)
        .await?;
        id.map(parse_event_id).transpose()
    })
}

impl crate::Store {
    /// Whether an event is kept apart from its room's DAG, and why.
    pub async fn apart_status(
        &self,
        event_id: &EventId,
    ) -> Result<Option<(crate::ApartStatus, Option<String>)>, StoreError> {
        let row: Option<(String, Option<String>)> = with_reader!(&self.db, |pool| {
            sqlx::query_as("SELECT status, reason FROM events_apart WHERE event_id = $1")
                .bind(event_id.as_str())
                .fetch_optional(pool)
                .await?
        });
        Ok(row.and_then(|(status, reason)| Some((crate::ApartStatus::parse(&status)?, reason))))
    }

    /// Whether the room's DAG holds the event.
    pub async fn has_event(&self, event_id: &EventId) -> Result<bool, StoreError> {
        let found: Option<i64> = with_reader!(&self.db, |pool| {
            sqlx::query_scalar("SELECT stream_ordering FROM events WHERE event_id = $1")
                .bind(event_id.as_str())
                .fetch_optional(pool)
                .await?
        });
        Ok(found.is_some())
    }
}

/// An outlier as stored: known without the state before it.
#[derive(Debug, Clone)]
pub struct StoredOutlier {
    pub event_id: OwnedEventId,
    pub room_version: RoomVersionId,
    /// The PDU as canonical JSON.
    pub json: String,
}

impl crate::Store {
    /// The outliers among `ids` (events of joined rooms known without their state).
    pub async fn outliers(&self, ids: &[OwnedEventId]) -> Result<Vec<StoredOutlier>, StoreError> {
        let mut out = Vec::new();
        for chunk in ids.chunks(500) {
            with_reader!(&self.db, |pool| {
                let mut query = QueryBuilder::new(
                    "SELECT a.event_id, a.json, r.room_version FROM events_apart a
                     JOIN rooms r ON r.room_id = a.room_id
                     WHERE a.status = 'outlier' AND a.event_id IN (",
                );
                let mut list = query.separated(", ");
                for id in chunk {
                    list.push_bind(id.as_str());
                }
                query.push(")");
                for row in query.build().fetch_all(pool).await? {
                    let id: String = row.try_get("event_id")?;
                    let version: String = row.try_get("room_version")?;
                    out.push(StoredOutlier {
                        event_id: OwnedEventId::try_from(id.as_str())
                            .map_err(|e| StoreError::Corrupt(format!("event id {id:?}: {e}")))?,
                        room_version: RoomVersionId::try_from(version.as_str()).map_err(|e| {
                            StoreError::Corrupt(format!("room version {version:?}: {e}"))
                        })?,
                        json: row.try_get("json")?,
                    });
                }
            });
        }
        Ok(out)
    }
}
