//! Reading a room's timeline by stream position, as /sync and /messages do.

use ruma::RoomId;
use sqlx::Row;

use crate::db::with_reader;
use crate::events::{event_columns, parse_event_id, stored_event};
use crate::recent::Mark;
use crate::{Store, StoreError, StoredEvent};

impl Store {
    /// Up to `limit` events of the room with `after < stream_ordering <= upto`, newest first;
    /// never beyond the last published position.
    pub async fn room_events_backwards(
        &self,
        room: &RoomId,
        after: i64,
        upto: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        // Committed but unpublished events are not in memory yet; readers don't get them from
        // the database either.
        let upto = upto.min(self.current_stream());
        if let Some(events) = self.caches.recent.backwards(room, after, upto, limit) {
            return Ok(events);
        }
        with_reader!(&self.db, |pool| {
            let rows = sqlx::query(
                concat!(
                "SELECT ",
                event_columns!(),
                " FROM events e JOIN rooms r ON r.room_id = e.room_id WHERE e.room_id = $1 AND e.stream_ordering > $2 AND e.stream_ordering <= $3 ORDER BY e.stream_ordering DESC LIMIT $4"
            ),
            )
            .bind(room.as_str())
            .bind(after)
            .bind(upto)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(stored_event!(row));
            }
            Ok(out)
        })
    }

    /// Up to `limit` events with `from <= stream_ordering < before`, oldest first (forward
    /// pagination).
    pub async fn room_events_forwards(
        &self,
        room: &RoomId,
        from: i64,
        before: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        // Read in ascending order with the limit in SQL: a page near the start of a long room
        // must not read the rest of it.
        with_reader!(&self.db, |pool| {
            let rows = sqlx::query(
                concat!(
                "SELECT ",
                event_columns!(),
                " FROM events e JOIN rooms r ON r.room_id = e.room_id WHERE e.room_id = $1 AND e.stream_ordering >= $2 AND e.stream_ordering < $3 ORDER BY e.stream_ordering ASC LIMIT $4"
            ),
            )
            .bind(room.as_str())
            .bind(from)
            .bind(before)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(stored_event!(row));
            }
            Ok(out)
        })
    }

    /// The room's events nearest to `ts` (origin_server_ts) going forwards (at or after it) or
    /// backwards (at or before it), nearest first, up to `limit`, at or before position `upto`.
    pub async fn room_events_near_ts(
        &self,
        room: &RoomId,
        ts: i64,
        forwards: bool,
        upto: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        const FORWARDS: &str = concat!(
            "SELECT ",
            event_columns!(),
            " FROM events e JOIN rooms r ON r.room_id = e.room_id
             WHERE e.room_id = $1 AND e.origin_server_ts >= $2 AND e.stream_ordering <= $3
             ORDER BY e.origin_server_ts ASC, e.stream_ordering ASC LIMIT $4"
        );
        const BACKWARDS: &str = concat!(
            "SELECT ",
            event_columns!(),
            " FROM events e JOIN rooms r ON r.room_id = e.room_id
             WHERE e.room_id = $1 AND e.origin_server_ts <= $2 AND e.stream_ordering <= $3
             ORDER BY e.origin_server_ts DESC, e.stream_ordering DESC LIMIT $4"
        );
        let sql = if forwards { FORWARDS } else { BACKWARDS };
        with_reader!(&self.db, |pool| {
            let rows = sqlx::query(sql)
                .bind(room.as_str())
                .bind(ts)
                .bind(upto.min(self.current_stream()))
                .bind(limit)
                .fetch_all(pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(stored_event!(row));
            }
            Ok(out)
        })
    }

    /// The last stream position that is fully persisted.
    pub fn current_stream(&self) -> i64 {
        *self.subscribe().borrow()
    }
}

impl Store {
    /// The transaction ids this device used for these events (to mark a client's own echoes).
    pub async fn transaction_ids_of(
        &self,
        user: &ruma::UserId,
        device: &ruma::DeviceId,
        events: &[ruma::OwnedEventId],
    ) -> Result<Vec<(ruma::OwnedEventId, String)>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(known) = self.caches.recent.transaction_ids(user, device, events) {
            return Ok(known);
        }
        with_reader!(&self.db, |pool| {
            let mut query = sqlx::QueryBuilder::new(
                "SELECT event_id, txn_id FROM transaction_ids WHERE user_id = ",
            );
            query
                .push_bind(user.as_str())
                .push(" AND device_id = ")
                .push_bind(device.as_str());
            query.push(" AND event_id IN (");
            let mut list = query.separated(", ");
            for id in events {
                list.push_bind(id.as_str());
            }
            query.push(")");
            let rows = query.build().fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push((
                    parse_event_id(row.try_get("event_id")?)?,
                    row.try_get("txn_id")?,
                ));
            }
            Ok(out)
        })
    }
}

impl Store {
    /// Of these events, the ones a redaction applies to, with the (first) redaction's id.
    pub async fn redactions_of(
        &self,
        events: &[ruma::OwnedEventId],
    ) -> Result<Vec<(ruma::OwnedEventId, ruma::OwnedEventId)>, StoreError> {
        let events = self.caches.recent.maybe_marked(events, Mark::Redacted);
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for chunk in events.chunks(500) {
            with_reader!(&self.db, |pool| {
                let mut query = sqlx::QueryBuilder::new(
                    "SELECT redacts, MIN(redaction_id) AS redaction_id FROM redactions WHERE redacts IN (",
                );
                let mut list = query.separated(", ");
                for id in chunk {
                    list.push_bind(id.as_str());
                }
                query.push(") GROUP BY redacts");
                for row in query.build().fetch_all(pool).await? {
                    out.push((
                        parse_event_id(row.try_get("redacts")?)?,
                        parse_event_id(row.try_get("redaction_id")?)?,
                    ));
                }
            });
        }
        Ok(out)
    }
}
