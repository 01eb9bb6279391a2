//! Local room aliases and the public room directory.

use ruma::{OwnedRoomAliasId, OwnedRoomId, OwnedUserId, RoomAliasId, RoomId};
use sqlx::Row;

use crate::db::{with_reader, with_writer};
use crate::{Store, StoreError};

fn unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

impl Store {
    /// Point an alias at a room. `Conflict` if the alias is taken.
    pub async fn create_alias(
        &self,
        alias: &RoomAliasId,
        room: &RoomId,
        creator: &ruma::UserId,
    ) -> Result<(), StoreError> {
        with_writer!(&self.db, |pool| {
            let result = sqlx::query(
                "INSERT INTO room_aliases (alias, room_id, creator) VALUES ($1, $2, $3)",
            )
            .bind(alias.as_str())
            .bind(room.as_str())
            .bind(creator.as_str())
            .execute(pool)
            .await;
            match result {
                Ok(_) => Ok(()),
                Err(e) if unique_violation(&e) => {
                    Err(StoreError::Conflict(format!("alias {alias} exists")))
                }
                Err(e) => Err(e.into()),
            }
        })
    }

    /// The room an alias points at, and who created the alias.
    pub async fn alias(
        &self,
        alias: &RoomAliasId,
    ) -> Result<Option<(OwnedRoomId, OwnedUserId)>, StoreError> {
        with_reader!(&self.db, |pool| {
            let row = sqlx::query("SELECT room_id, creator FROM room_aliases WHERE alias = $1")
                .bind(alias.as_str())
                .fetch_optional(pool)
                .await?;
            match row {
                Some(row) => {
                    let room: String = row.try_get("room_id")?;
                    let creator: String = row.try_get("creator")?;
                    Ok(Some((
                        OwnedRoomId::try_from(room)
                            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                        OwnedUserId::try_from(creator)
                            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    )))
                }
                None => Ok(None),
            }
        })
    }

    /// Remove an alias; `false` if there was none.
    pub async fn delete_alias(&self, alias: &RoomAliasId) -> Result<bool, StoreError> {
        with_writer!(&self.db, |pool| {
            let done = sqlx::query("DELETE FROM room_aliases WHERE alias = $1")
                .bind(alias.as_str())
                .execute(pool)
                .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// The local aliases of a room.
    pub async fn aliases_of(&self, room: &RoomId) -> Result<Vec<OwnedRoomAliasId>, StoreError> {
        with_reader!(&self.db, |pool| {
            let rows: Vec<String> = sqlx::query_scalar(
                "SELECT alias FROM room_aliases WHERE room_id = $1 ORDER BY alias",
            )
            .bind(room.as_str())
            .fetch_all(pool)
            .await?;
            rows.into_iter()
                .map(|a| {
                    OwnedRoomAliasId::try_from(a).map_err(|e| StoreError::Corrupt(e.to_string()))
                })
                .collect()
        })
    }

    /// Point every local alias of `from` at `to` (a room upgrade); returns how many moved.
    pub async fn move_aliases(&self, from: &RoomId, to: &RoomId) -> Result<u64, StoreError> {
        with_writer!(&self.db, |pool| {
            let done = sqlx::query("UPDATE room_aliases SET room_id = $1 WHERE room_id = $2")
                .bind(to.as_str())
                .bind(from.as_str())
                .execute(pool)
                .await?;
            Ok(done.rows_affected())
        })
    }

    /// Publish a room in (or withdraw it from) the public directory.
    pub async fn set_published(&self, room: &RoomId, public: bool) -> Result<(), StoreError> {
        with_writer!(&self.db, |pool| {
            if public {
                sqlx::query("INSERT INTO room_directory (room_id) VALUES ($1) ON CONFLICT (room_id) DO NOTHING")
                    .bind(room.as_str())
                    .execute(pool)
                    .await?;
            } else {
                sqlx::query("DELETE FROM room_directory WHERE room_id = $1")
                    .bind(room.as_str())
                    .execute(pool)
                    .await?;
            }
            Ok(())
        })
    }

    /// Whether the room is in the public directory.
    pub async fn is_published(&self, room: &RoomId) -> Result<bool, StoreError> {
        with_reader!(&self.db, |pool| {
            let n: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM room_directory WHERE room_id = $1")
                    .bind(room.as_str())
                    .fetch_one(pool)
                    .await?;
            Ok(n > 0)
        })
    }

    /// Every published room.
    pub async fn published_rooms(&self) -> Result<Vec<OwnedRoomId>, StoreError> {
        with_reader!(&self.db, |pool| {
            let rows: Vec<String> =
                sqlx::query_scalar("SELECT room_id FROM room_directory ORDER BY room_id")
                    .fetch_all(pool)
                    .await?;
            rows.into_iter()
                .map(|r| OwnedRoomId::try_from(r).map_err(|e| StoreError::Corrupt(e.to_string())))
                .collect()
        })
    }
}
