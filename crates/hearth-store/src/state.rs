//! State groups: snapshots stored as a parent plus a delta.

use ruma::RoomId;
use sqlx::Row;

use crate::db::{Db, with_reader};
use crate::events::parse_event_id;
use crate::{StateRows, StoreError};

pub(crate) async fn max_state_group(db: &Db) -> Result<i64, StoreError> {
    with_reader!(db, |pool| {
        let max: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM state_groups")
            .fetch_one(pool)
            .await?;
        Ok(max.unwrap_or(0))
    })
}

/// The full state of `group`: its ancestors' deltas applied root first.
pub(crate) async fn load(db: &Db, group: i64) -> Result<StateRows, StoreError> {
    with_reader!(db, |pool| {
        let rows = sqlx::query(
            "WITH RECURSIVE chain(id, parent, lvl) AS (
                SELECT id, parent, 0 FROM state_groups WHERE id = $1
                UNION ALL
                SELECT g.id, g.parent, c.lvl + 1 FROM state_groups g JOIN chain c ON g.id = c.parent
            )
            SELECT d.event_type, d.state_key, d.event_id, c.lvl
            FROM chain c JOIN state_group_deltas d ON d.group_id = c.id
            ORDER BY c.lvl DESC",
        )
        .bind(group)
        .fetch_all(pool)
        .await?;
        let mut state = StateRows::new();
        for row in rows {
            let key = (row.try_get("event_type")?, row.try_get("state_key")?);
            match row.try_get::<Option<String>, _>("event_id")? {
                Some(id) => {
                    state.insert(key, parse_event_id(id)?);
                }
                None => {
                    state.remove(&key);
                }
            }
        }
        Ok(state)
    })
}

/// The current `(room, type)` -> event of many rooms' state events with an empty state key of
/// the given types, in one query per 500 rooms.
pub(crate) async fn current_of_types(
    db: &Db,
    rooms: &[ruma::OwnedRoomId],
    types: &[&str],
) -> Result<Vec<(ruma::OwnedRoomId, String, ruma::OwnedEventId)>, StoreError> {
    let mut out = Vec::new();
    if types.is_empty() {
        return Ok(out);
    }
    for chunk in rooms.chunks(500) {
        with_reader!(db, |pool| {
            let mut query = sqlx::QueryBuilder::new(
                "SELECT room_id, event_type, event_id FROM current_state
                 WHERE state_key = '' AND event_type IN (",
            );
            let mut list = query.separated(", ");
            for kind in types {
                list.push_bind(*kind);
            }
            query.push(") AND room_id IN (");
            let mut list = query.separated(", ");
            for room in chunk {
                list.push_bind(room.as_str());
            }
            query.push(")");
            for row in query.build().fetch_all(pool).await? {
                let room: String = row.try_get("room_id")?;
                let room = ruma::OwnedRoomId::try_from(room)
                    .map_err(|e| StoreError::Corrupt(format!("room id in current_state: {e}")))?;
                out.push((
                    room,
                    row.try_get("event_type")?,
                    parse_event_id(row.try_get("event_id")?)?,
                ));
            }
        });
    }
    Ok(out)
}

pub(crate) async fn current(db: &Db, room_id: &RoomId) -> Result<StateRows, StoreError> {
    with_reader!(db, |pool| {
        let rows = sqlx::query(
            "SELECT event_type, state_key, event_id FROM current_state WHERE room_id = $1",
        )
        .bind(room_id.as_str())
        .fetch_all(pool)
        .await?;
        let mut state = StateRows::new();
        for row in rows {
            state.insert(
                (row.try_get("event_type")?, row.try_get("state_key")?),
                parse_event_id(row.try_get("event_id")?)?,
            );
        }
        Ok(state)
    })
}
