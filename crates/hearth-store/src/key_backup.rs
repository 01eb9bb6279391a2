//! Server-side key backup: versions of a user's backup and the room-key sessions in each.
//!
//! Only the newest version that is not deleted takes new keys. Its `etag` moves whenever its
//! keys change. Version numbers are never reused: deleted versions keep their row.

use ruma::{OwnedRoomId, RoomId, UserId};

use crate::db::{with_reader, with_writer};
use crate::{Store, StoreError};

/// One backup version, with how many sessions it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupVersion {
    pub version: i64,
    pub algorithm: String,
    /// JSON object.
    pub auth_data: String,
    pub etag: i64,
    pub count: i64,
}

/// One backed-up session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomKeyRow {
    pub room_id: OwnedRoomId,
    pub session_id: String,
    pub first_message_index: i64,
    pub forwarded_count: i64,
    pub is_verified: bool,
    /// The whole `KeyBackupData` object (JSON).
    pub key_data: String,
}

/// Which sessions of a version: all, a room's, or one.
#[derive(Debug, Clone, Copy)]
pub enum RoomKeyScope<'a> {
    All,
    Room(&'a RoomId),
    Session(&'a RoomId, &'a str),
}

/// Move a version's etag on when its keys changed; evaluates to `(etag, count)`.
macro_rules! bump_etag {
    ($tx:expr, $user:expr, $version:expr, $changed:expr) => {{
        if $changed {
            sqlx::query(
                "UPDATE room_key_backups SET etag = etag + 1 WHERE user_id = $1 AND version = $2",
            )
            .bind($user.as_str())
            .bind($version)
            .execute(&mut *$tx)
            .await?;
        }
        let etag: i64 = sqlx::query_scalar(
            "SELECT etag FROM room_key_backups WHERE user_id = $1 AND version = $2",
        )
        .bind($user.as_str())
        .bind($version)
        .fetch_optional(&mut *$tx)
        .await?
        .unwrap_or(0);
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM room_keys WHERE user_id = $1 AND version = $2",
        )
        .bind($user.as_str())
        .bind($version)
        .fetch_one(&mut *$tx)
        .await?;
        (etag, count)
    }};
}

impl Store {
    /// Start a new backup version; returns its number.
    pub async fn create_backup_version(
        &self,
        user: &UserId,
        algorithm: &str,
        auth_data: &str,
    ) -> Result<i64, StoreError> {
        Ok(with_writer!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            // The user's own rows are the only contention; the primary key settles a race.
            let version: i64 = sqlx::query_scalar(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM room_key_backups WHERE user_id = $1",
            )
            .bind(user.as_str())
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO room_key_backups (user_id, version, algorithm, auth_data)
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(user.as_str())
            .bind(version)
            .bind(algorithm)
            .bind(auth_data)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            version
        }))
    }

    /// A version (the newest when `version` is `None`), unless deleted.
    pub async fn backup_version(
        &self,
        user: &UserId,
        version: Option<i64>,
    ) -> Result<Option<BackupVersion>, StoreError> {
        let row: Option<(i64, String, String, i64, i64)> = with_reader!(&self.db, |pool| {
            sqlx::query_as(
                "SELECT b.version, b.algorithm, b.auth_data, b.etag,
                        (SELECT COUNT(*) FROM room_keys k
                         WHERE k.user_id = b.user_id AND k.version = b.version) AS count
                 FROM room_key_backups b
                 WHERE b.user_id = $1 AND b.deleted = 0 AND ($2 IS NULL OR b.version = $2)
                 ORDER BY b.version DESC LIMIT 1",
            )
            .bind(user.as_str())
            .bind(version)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(
            |(version, algorithm, auth_data, etag, count)| BackupVersion {
                version,
                algorithm,
                auth_data,
                etag,
                count,
            },
        ))
    }

    /// Replace a version's `auth_data`. Returns whether the version exists (and is not deleted).
    pub async fn update_backup_version(
        &self,
        user: &UserId,
        version: i64,
        auth_data: &str,
    ) -> Result<bool, StoreError> {
        Ok(with_writer!(&self.db, |pool| {
            sqlx::query(
                "UPDATE room_key_backups SET auth_data = $3
                 WHERE user_id = $1 AND version = $2 AND deleted = 0",
            )
            .bind(user.as_str())
            .bind(version)
            .bind(auth_data)
            .execute(pool)
            .await?
            .rows_affected()
                > 0
        }))
    }

    /// Delete a version and its keys. Returns whether it existed.
    pub async fn delete_backup_version(
        &self,
        user: &UserId,
        version: i64,
    ) -> Result<bool, StoreError> {
        Ok(with_writer!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            let found = sqlx::query(
                "UPDATE room_key_backups SET deleted = 1
                 WHERE user_id = $1 AND version = $2 AND deleted = 0",
            )
            .bind(user.as_str())
            .bind(version)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                > 0;
            sqlx::query("DELETE FROM room_keys WHERE user_id = $1 AND version = $2")
                .bind(user.as_str())
                .bind(version)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            found
        }))
    }

    /// Store sessions in `version`, keeping an existing session wherever `keep_existing(old,
    /// new)` says it is the better one. `Err(current)` when `version` is not the newest version
    /// (`current`, or `None` when there is none); otherwise the version's new etag and count.
    pub async fn put_room_keys(
        &self,
        user: &UserId,
        version: i64,
        sessions: &[RoomKeyRow],
        keep_existing: impl Fn(&RoomKeyRow, &RoomKeyRow) -> bool,
    ) -> Result<Result<(i64, i64), Option<i64>>, StoreError> {
        Ok(with_writer!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            let current: Option<i64> = sqlx::query_scalar(
                "SELECT MAX(version) FROM room_key_backups WHERE user_id = $1 AND deleted = 0",
            )
            .bind(user.as_str())
            .fetch_one(&mut *tx)
            .await?;
            if current != Some(version) {
                Err(current)
            } else {
                let mut changed = false;
                for new in sessions {
                    let old: Option<(i64, i64, i64, String)> = sqlx::query_as(
                        "SELECT first_message_index, forwarded_count, is_verified, key_data
                         FROM room_keys
                         WHERE user_id = $1 AND version = $2 AND room_id = $3 AND session_id = $4",
                    )
                    .bind(user.as_str())
                    .bind(version)
                    .bind(new.room_id.as_str())
                    .bind(&new.session_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if let Some((first_message_index, forwarded_count, verified, key_data)) = old {
                        let old = RoomKeyRow {
                            room_id: new.room_id.clone(),
                            session_id: new.session_id.clone(),
                            first_message_index,
                            forwarded_count,
                            is_verified: verified != 0,
                            key_data,
                        };
                        if keep_existing(&old, new) {
                            continue;
                        }
                    }
                    sqlx::query(
                        "INSERT INTO room_keys (user_id, version, room_id, session_id,
                             first_message_index, forwarded_count, is_verified, key_data)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                         ON CONFLICT (user_id, version, room_id, session_id) DO UPDATE SET
                             first_message_index = excluded.first_message_index,
                             forwarded_count = excluded.forwarded_count,
                             is_verified = excluded.is_verified,
                             key_data = excluded.key_data",
                    )
                    .bind(user.as_str())
                    .bind(version)
                    .bind(new.room_id.as_str())
                    .bind(&new.session_id)
                    .bind(new.first_message_index)
                    .bind(new.forwarded_count)
                    .bind(i64::from(new.is_verified))
                    .bind(&new.key_data)
                    .execute(&mut *tx)
                    .await?;
                    changed = true;
                }
                let (etag, count) = bump_etag!(tx, user, version, changed);
                tx.commit().await?;
                Ok((etag, count))
            }
        }))
    }

    /// The sessions of `version` in `scope`, by room and session id.
    pub async fn room_keys(
        &self,
        user: &UserId,
        version: i64,
        scope: RoomKeyScope<'_>,
    ) -> Result<Vec<RoomKeyRow>, StoreError> {
        let (room, session) = scope_keys(scope);
        let rows: Vec<(String, String, i64, i64, i64, String)> = with_reader!(&self.db, |pool| {
            sqlx::query_as(
                "SELECT room_id, session_id, first_message_index, forwarded_count, is_verified,
                        key_data
                 FROM room_keys
                 WHERE user_id = $1 AND version = $2
                   AND ($3 IS NULL OR room_id = $3) AND ($4 IS NULL OR session_id = $4)
                 ORDER BY room_id, session_id",
            )
            .bind(user.as_str())
            .bind(version)
            .bind(room)
            .bind(session)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(
                |(room, session_id, first_message_index, forwarded_count, verified, key_data)| {
                    Ok(RoomKeyRow {
                        room_id: OwnedRoomId::try_from(room.as_str())
                            .map_err(|e| StoreError::Corrupt(format!("room id {room:?}: {e}")))?,
                        session_id,
                        first_message_index,
                        forwarded_count,
                        is_verified: verified != 0,
                        key_data,
                    })
                },
            )
            .collect()
    }

    /// Delete the sessions of `version` in `scope`; returns the version's etag and count after.
    pub async fn delete_room_keys(
        &self,
        user: &UserId,
        version: i64,
        scope: RoomKeyScope<'_>,
    ) -> Result<(i64, i64), StoreError> {
        let (room, session) = scope_keys(scope);
        Ok(with_writer!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            let deleted = sqlx::query(
                "DELETE FROM room_keys WHERE user_id = $1 AND version = $2
                   AND ($3 IS NULL OR room_id = $3) AND ($4 IS NULL OR session_id = $4)",
            )
            .bind(user.as_str())
            .bind(version)
            .bind(room)
            .bind(session)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let (etag, count) = bump_etag!(tx, user, version, deleted > 0);
            tx.commit().await?;
            (etag, count)
        }))
    }
}

fn scope_keys(scope: RoomKeyScope<'_>) -> (Option<&str>, Option<&str>) {
    match scope {
        RoomKeyScope::All => (None, None),
        RoomKeyScope::Room(room) => (Some(room.as_str()), None),
        RoomKeyScope::Session(room, session) => (Some(room.as_str()), Some(session)),
    }
}
