//! Read receipts: the latest receipt of each user per room, type and thread, numbered in a
//! stream of their own so /sync can send only what changed.

use ruma::{EventId, OwnedEventId, OwnedRoomId, OwnedUserId, RoomId, UserId};
use sqlx::Row;

use crate::db::{Db, with_reader, with_writer};
use crate::events::{parse_event_id, parse_room_id};
use crate::{Store, StoreError};

/// `pg_advisory_xact_lock` key serialising receipt writers on PostgreSQL.
const RECEIPTS_LOCK: i64 = 7_274_838;

/// A stored receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptRow {
    pub room_id: OwnedRoomId,
    pub user_id: OwnedUserId,
    pub receipt_type: String,
    /// `None` for an unthreaded receipt.
    pub thread_id: Option<String>,
    pub event_id: OwnedEventId,
    pub ts: i64,
    pub stream_ordering: i64,
}

/// One user's `m.read` / `m.read.private` receipts in a room: `(thread_id, event)`, with `""`
/// for unthreaded receipts, `"main"` for the main timeline, else the thread root.
pub type ReadReceipts = std::sync::Arc<Vec<(String, OwnedEventId)>>;

impl Store {
    /// Record a receipt (replacing the user's previous one of this type and thread); returns
    /// its stream position.
    pub async fn set_receipt(
        &self,
        room: &RoomId,
        user: &UserId,
        receipt_type: &str,
        thread_id: Option<&str>,
        event: &EventId,
        ts: i64,
    ) -> Result<i64, StoreError> {
        let is_postgres = matches!(self.db, Db::Postgres(_));
        let position: i64 = with_writer!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            if is_postgres {
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(RECEIPTS_LOCK)
                    .execute(&mut *tx)
                    .await?;
            }
            let max: Option<i64> = sqlx::query_scalar("SELECT MAX(stream_ordering) FROM receipts")
                .fetch_one(&mut *tx)
                .await?;
            let position = max.unwrap_or(0) + 1;
            sqlx::query(
                "INSERT INTO receipts (room_id, user_id, receipt_type, thread_id, event_id, ts, stream_ordering)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (room_id, user_id, receipt_type, thread_id) DO UPDATE SET
                 event_id = excluded.event_id, ts = excluded.ts, stream_ordering = excluded.stream_ordering",
            )
            .bind(room.as_str())
            .bind(user.as_str())
            .bind(receipt_type)
            .bind(thread_id.unwrap_or(""))
            .bind(event.as_str())
            .bind(ts)
            .bind(position)
            .execute(&mut *tx)
            .await?;
            // Raised before the commit (see `Bounds`): a later receipt may publish first.
            self.caches.receipt_bounds.raise(room.to_owned(), position);
            tx.commit().await?;
            Ok::<_, StoreError>(position)
        })?;
        // The caches first: a reader that sees the new position must find the receipt.
        self.caches
            .read_receipts
            .invalidate(&(room.to_owned(), user.to_owned()));
        self.positions
            .receipts
            .fetch_max(position, std::sync::atomic::Ordering::AcqRel);
        self.notifier.publish(crate::News::room(room));
        Ok(position)
    }

    /// The highest receipt stream position (0 when there are none).
    pub async fn max_receipt_stream(&self) -> Result<i64, StoreError> {
        Ok(self
            .positions
            .receipts
            .load(std::sync::atomic::Ordering::Acquire))
    }

    /// One user's `m.read` / `m.read.private` receipts in a room.
    pub async fn read_receipt_events(
        &self,
        room: &RoomId,
        user: &UserId,
    ) -> Result<ReadReceipts, StoreError> {
        let key = (room.to_owned(), user.to_owned());
        let ticket = match self.caches.read_receipts.get(&key) {
            Ok(known) => return Ok(known),
            Err(ticket) => ticket,
        };
        let found = std::sync::Arc::new(self.read_read_receipt_events(room, user).await?);
        self.caches.read_receipts.fill(ticket, key, found.clone());
        Ok(found)
    }

    async fn read_read_receipt_events(
        &self,
        room: &RoomId,
        user: &UserId,
    ) -> Result<Vec<(String, OwnedEventId)>, StoreError> {
        with_reader!(&self.db, |pool| {
            let rows = sqlx::query(
                "SELECT thread_id, event_id FROM receipts
                 WHERE room_id = $1 AND user_id = $2
                   AND receipt_type IN ('m.read', 'm.read.private')
                 ORDER BY thread_id, event_id",
            )
            .bind(room.as_str())
            .bind(user.as_str())
            .fetch_all(pool)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push((
                    row.try_get("thread_id")?,
                    parse_event_id(row.try_get("event_id")?)?,
                ));
            }
            Ok(out)
        })
    }

    /// Receipts in a room with `since < stream_ordering <= upto`.
    pub async fn receipts_between(
        &self,
        room: &RoomId,
        since: i64,
        upto: i64,
    ) -> Result<Vec<ReceiptRow>, StoreError> {
        if self.caches.receipt_bounds.nothing_after(room, since) {
            return Ok(Vec::new());
        }
        let found = self.read_receipts_between(room, since, upto).await?;
        // Nothing in (since, upto] beyond what was found; what is newer raised the bound itself.
        let newest = found.last().map_or(since, |r| r.stream_ordering);
        self.caches.receipt_bounds.raise(room.to_owned(), newest);
        Ok(found)
    }

    async fn read_receipts_between(
        &self,
        room: &RoomId,
        since: i64,
        upto: i64,
    ) -> Result<Vec<ReceiptRow>, StoreError> {
        with_reader!(&self.db, |pool| {
            let rows = sqlx::query(
                "SELECT room_id, user_id, receipt_type, thread_id, event_id, ts, stream_ordering
                 FROM receipts WHERE room_id = $1 AND stream_ordering > $2 AND stream_ordering <= $3
                 ORDER BY stream_ordering",
            )
            .bind(room.as_str())
            .bind(since)
            .bind(upto)
            .fetch_all(pool)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let user: String = row.try_get("user_id")?;
                let thread: String = row.try_get("thread_id")?;
                out.push(ReceiptRow {
                    room_id: parse_room_id(row.try_get("room_id")?)?,
                    user_id: OwnedUserId::try_from(user.as_str())
                        .map_err(|e| StoreError::Corrupt(format!("user id {user:?}: {e}")))?,
                    receipt_type: row.try_get("receipt_type")?,
                    thread_id: (!thread.is_empty()).then_some(thread),
                    event_id: parse_event_id(row.try_get("event_id")?)?,
                    ts: row.try_get("ts")?,
                    stream_ordering: row.try_get("stream_ordering")?,
                });
            }
            Ok(out)
        })
    }
}

/// The highest receipt position in the database (read once at start-up).
pub(crate) async fn max_stream(db: &Db) -> Result<i64, StoreError> {
    with_reader!(db, |pool| {
        let max: Option<i64> = sqlx::query_scalar("SELECT MAX(stream_ordering) FROM receipts")
            .fetch_one(pool)
            .await?;
        Ok(max.unwrap_or(0))
    })
}
