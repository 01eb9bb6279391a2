//! Account data: per-user (global) and per-user-per-room JSON objects that clients set and sync.
//!
//! Every write moves the entry to a new position of the account-data stream, `MAX + 1` taken
//! inside the writing transaction. On SQLite the single writer connection already serialises
//! writers; on PostgreSQL a transaction-scoped advisory lock does, so that two writers never
//! take the same position and a reader never sees a later position committed before an earlier
//! one. Positions only grow because rows are never deleted (a deletion of the newest row would
//! hand its position out again).

use ruma::{OwnedRoomId, RoomId, UserId};
use sqlx::Row;

use crate::db::{Db, with_reader, with_writer};
use crate::{AccountDataRow, Store, StoreError};

/// `pg_advisory_xact_lock` key serialising account-data writers on PostgreSQL.
const ACCOUNT_DATA_LOCK: i64 = 0x6865_6172_7468_0004;

/// Global account data is stored with the empty room id.
fn room_key(room: Option<&RoomId>) -> &str {
    room.map_or("", RoomId::as_str)
}

impl Store {
    /// Set an account-data entry (global when `room` is `None`); `content` is a JSON object.
    /// Returns the entry's new stream position.
    pub async fn set_account_data(
        &self,
        user: &UserId,
        room: Option<&RoomId>,
        data_type: &str,
        content: &str,
    ) -> Result<i64, StoreError> {
        let position = self
            .update_account_data(user, room, data_type, |_| Some(content.to_owned()))
            .await?;
        position.ok_or_else(|| StoreError::Corrupt("account data update was skipped".into()))
    }

    /// Read-modify-write an account-data entry atomically: `update` gets the current content
    /// (if any) and returns the new one, or `None` to leave the entry as it is. Returns the new
    /// stream position, or `None` when nothing was written.
    pub async fn update_account_data<F>(
        &self,
        user: &UserId,
        room: Option<&RoomId>,
        data_type: &str,
        update: F,
    ) -> Result<Option<i64>, StoreError>
    where
        F: FnOnce(Option<&str>) -> Option<String>,
    {
        let is_postgres = matches!(self.db, Db::Postgres(_));
        let room = room_key(room);
        let written: Option<i64> = with_writer!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            if is_postgres {
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(ACCOUNT_DATA_LOCK)
                    .execute(&mut *tx)
                    .await?;
            }
            let current: Option<String> = sqlx::query_scalar(
                "SELECT content FROM account_data
                 WHERE user_id = $1 AND room_id = $2 AND data_type = $3",
            )
            .bind(user.as_str())
            .bind(room)
            .bind(data_type)
            .fetch_optional(&mut *tx)
            .await?;
            match update(current.as_deref()) {
                None => None,
                Some(content) => {
                    let position: i64 = sqlx::query_scalar(
                        "SELECT COALESCE(MAX(stream_ordering), 0) + 1 FROM account_data",
                    )
                    .fetch_one(&mut *tx)
                    .await?;
                    sqlx::query(
                        "INSERT INTO account_data
                             (user_id, room_id, data_type, content, stream_ordering)
                         VALUES ($1, $2, $3, $4, $5)
                         ON CONFLICT (user_id, room_id, data_type) DO UPDATE
                         SET content = excluded.content,
                             stream_ordering = excluded.stream_ordering",
                    )
                    .bind(user.as_str())
                    .bind(room)
                    .bind(data_type)
                    .bind(content)
                    .bind(position)
                    .execute(&mut *tx)
                    .await?;
                    // Raised before the commit (see `Bounds`): a later write may publish first.
                    self.caches
                        .account_data_bounds
                        .raise(user.to_owned(), position);
                    tx.commit().await?;
                    Some(position)
                }
            }
        });
        if let Some(position) = written {
            // The caches first: a reader that sees the new position must find the entry.
            self.caches.account_data.invalidate(&(
                user.to_owned(),
                room.to_owned(),
                data_type.to_owned(),
            ));
            self.positions
                .account_data
                .fetch_max(position, std::sync::atomic::Ordering::AcqRel);
            self.notifier.publish(crate::News::user(user));
        }
        Ok(written)
    }

    /// One account-data entry's content (global when `room` is `None`).
    pub async fn account_data(
        &self,
        user: &UserId,
        room: Option<&RoomId>,
        data_type: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .shared_account_data(user, room, data_type)
            .await?
            .map(|c| c.to_string()))
    }

    /// [`Store::account_data`] without a copy: the same `Arc` comes back for as long as the
    /// entry is unchanged and remembered, so callers can tell "unchanged" cheaply.
    pub async fn shared_account_data(
        &self,
        user: &UserId,
        room: Option<&RoomId>,
        data_type: &str,
    ) -> Result<Option<std::sync::Arc<str>>, StoreError> {
        let key = (
            user.to_owned(),
            room_key(room).to_owned(),
            data_type.to_owned(),
        );
        let ticket = match self.caches.account_data.get(&key) {
            Ok(known) => return Ok(known),
            Err(ticket) => ticket,
        };
        let found: Option<std::sync::Arc<str>> = self
            .read_account_data(user, room, data_type)
            .await?
            .map(Into::into);
        self.caches.account_data.fill(ticket, key, found.clone());
        Ok(found)
    }

    async fn read_account_data(
        &self,
        user: &UserId,
        room: Option<&RoomId>,
        data_type: &str,
    ) -> Result<Option<String>, StoreError> {
        let room = room_key(room);
        with_reader!(&self.db, |pool| {
            Ok(sqlx::query_scalar(
                "SELECT content FROM account_data
                 WHERE user_id = $1 AND room_id = $2 AND data_type = $3",
            )
            .bind(user.as_str())
            .bind(room)
            .bind(data_type)
            .fetch_optional(pool)
            .await?)
        })
    }

    /// The user's account-data entries (global and per room) changed after stream position
    /// `since`, in stream order; `since = 0` gives all of them. Each entry appears once, as of
    /// its last change.
    pub async fn account_data_since(
        &self,
        user: &UserId,
        since: i64,
    ) -> Result<Vec<AccountDataRow>, StoreError> {
        if self.caches.account_data_bounds.nothing_after(user, since) {
            return Ok(Vec::new());
        }
        let found = self.read_account_data_since(user, since).await?;
        let newest = found.last().map_or(since, |row| row.stream_ordering);
        self.caches
            .account_data_bounds
            .raise(user.to_owned(), newest);
        Ok(found)
    }

    async fn read_account_data_since(
        &self,
        user: &UserId,
        since: i64,
    ) -> Result<Vec<AccountDataRow>, StoreError> {
        with_reader!(&self.db, |pool| {
            let rows = sqlx::query(
                "SELECT room_id, data_type, content, stream_ordering FROM account_data
                 WHERE user_id = $1 AND stream_ordering > $2
                 ORDER BY stream_ordering",
            )
            .bind(user.as_str())
            .bind(since)
            .fetch_all(pool)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let room: String = row.try_get("room_id")?;
                let room_id = if room.is_empty() {
                    None
                } else {
                    Some(
                        OwnedRoomId::try_from(room.as_str())
                            .map_err(|e| StoreError::Corrupt(format!("room id {room:?}: {e}")))?,
                    )
                };
                out.push(AccountDataRow {
                    room_id,
                    data_type: row.try_get("data_type")?,
                    content: row.try_get("content")?,
                    stream_ordering: row.try_get("stream_ordering")?,
                });
            }
            Ok(out)
        })
    }

    /// The newest account-data stream position (0 when there is no account data yet).
    pub async fn max_account_data_stream(&self) -> Result<i64, StoreError> {
        Ok(self
            .positions
            .account_data
            .load(std::sync::atomic::Ordering::Acquire))
    }
}

/// The highest account data position in the database (read once at start-up).
pub(crate) async fn max_stream(db: &Db) -> Result<i64, StoreError> {
    with_reader!(db, |pool| {
        Ok(
            sqlx::query_scalar("SELECT COALESCE(MAX(stream_ordering), 0) FROM account_data")
                .fetch_one(pool)
                .await?,
        )
    })
}
