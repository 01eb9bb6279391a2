//! Local accounts: users, their devices and the access tokens that sign a device in.
//!
//! Access tokens are only ever stored as their SHA-256 hash (computed by the caller): a copy of
//! the database does not hand out sessions. A device and its tokens live and die together; every
//! write that touches several rows runs in one transaction.

use ruma::{DeviceId, OwnedDeviceId, OwnedUserId, UserId};
use sqlx::Row;

use crate::db::{with_reader, with_writer};
use crate::keys::record_device_list_change;
use crate::migrations::now_ms;
use crate::{
    NewSession, NewUser, RemoveDevices, Store, StoreError, StoredDevice, StoredUser, TokenOwner,
};

fn parse_user_id(s: String) -> Result<OwnedUserId, StoreError> {
    OwnedUserId::try_from(s.as_str())
        .map_err(|e| StoreError::Corrupt(format!("user id {s:?}: {e}")))
}

/// A unique violation becomes [`StoreError::Conflict`]; anything else stays a database error.
fn conflict(e: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what()),
        _ => e.into(),
    }
}

// The statements below are shared by several transactions. They are macros rather than functions
// because each `with_writer!` body is expanded once per backend, with a differently typed
// transaction.

/// Insert a device unless it exists; evaluates to whether it was created.
macro_rules! insert_device {
    ($tx:expr, $user:expr, $device:expr, $name:expr, $now:expr) => {
        sqlx::query(
            "INSERT INTO devices (user_id, device_id, display_name, created_at_ms)
             VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, device_id) DO NOTHING",
        )
        .bind($user)
        .bind($device)
        .bind($name)
        .bind($now)
        .execute(&mut *$tx)
        .await?
        .rows_affected()
            > 0
    };
}

macro_rules! insert_token {
    ($tx:expr, $session:expr, $user:expr, $device:expr, $now:expr) => {{
        let session: &NewSession = $session;
        // A new session of a device ends the device's older refresh tokens.
        sqlx::query("DELETE FROM refresh_tokens WHERE user_id = $1 AND device_id = $2")
            .bind($user)
            .bind($device)
            .execute(&mut *$tx)
            .await?;
        sqlx::query(
            "INSERT INTO access_tokens (token_hash, user_id, device_id, created_at_ms, expires_at_ms)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(session.token_hash.as_str())
        .bind($user)
        .bind($device)
        .bind($now)
        .bind(session.expires_at_ms)
        .execute(&mut *$tx)
        .await
        .map_err(|e| conflict(e, || "access token".to_owned()))?;
        if let Some(refresh) = &session.refresh_token_hash {
            sqlx::query(
                "INSERT INTO refresh_tokens (token_hash, user_id, device_id, created_at_ms)
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(refresh.as_str())
            .bind($user)
            .bind($device)
            .bind($now)
            .execute(&mut *$tx)
            .await
            .map_err(|e| conflict(e, || "refresh token".to_owned()))?;
        }
    }};
}

/// Delete one device and its tokens; evaluates to whether the device existed. The tokens would
/// go by the foreign key's cascade too; deleting them explicitly keeps that from being the only
/// thing standing between a removed device and a live session.
macro_rules! delete_device {
    ($tx:expr, $user:expr, $device:expr) => {{
        sqlx::query("DELETE FROM access_tokens WHERE user_id = $1 AND device_id = $2")
            .bind($user)
            .bind($device)
            .execute(&mut *$tx)
            .await?;
        sqlx::query("DELETE FROM devices WHERE user_id = $1 AND device_id = $2")
            .bind($user)
            .bind($device)
            .execute(&mut *$tx)
            .await?
            .rows_affected()
            > 0
    }};
}

pub(crate) use {delete_device, insert_device};

/// Delete all of a user's devices (and their tokens), optionally but one; evaluates to how many
/// devices went.
macro_rules! delete_user_devices {
    ($tx:expr, $user:expr, $except:expr) => {{
        let except: Option<&str> = $except;
        match except {
            Some(keep) => {
                sqlx::query("DELETE FROM access_tokens WHERE user_id = $1 AND device_id <> $2")
                    .bind($user)
                    .bind(keep)
                    .execute(&mut *$tx)
                    .await?;
                sqlx::query("DELETE FROM devices WHERE user_id = $1 AND device_id <> $2")
                    .bind($user)
                    .bind(keep)
                    .execute(&mut *$tx)
                    .await?
                    .rows_affected()
            }
            None => {
                sqlx::query("DELETE FROM access_tokens WHERE user_id = $1")
                    .bind($user)
                    .execute(&mut *$tx)
                    .await?;
                sqlx::query("DELETE FROM devices WHERE user_id = $1")
                    .bind($user)
                    .execute(&mut *$tx)
                    .await?
                    .rows_affected()
            }
        }
    }};
}

fn device_from_row<R>(row: &R) -> Result<StoredDevice, StoreError>
where
    R: Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let device_id: String = row.try_get("device_id")?;
    Ok(StoredDevice {
        user_id: parse_user_id(row.try_get("user_id")?)?,
        device_id: device_id.into(),
        display_name: row.try_get("display_name")?,
        last_seen_ms: row.try_get("last_seen_ms")?,
        created_at_ms: row.try_get("created_at_ms")?,
    })
}

impl Store {
    /// Create a user and, if given, its first signed-in device, in one transaction.
    /// Fails with [`StoreError::Conflict`] when the user id is taken (deactivated users too).
    pub async fn create_user(
        &self,
        user: &NewUser,
        session: Option<&NewSession>,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let user_id = user.user_id.as_str();
        let written = with_writer!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO users
                 (user_id, password_hash, is_admin, is_guest, deactivated, created_at_ms)
                 VALUES ($1, $2, $3, $4, 0, $5)",
            )
            .bind(user_id)
            .bind(user.password_hash.as_deref())
            .bind(i64::from(user.is_admin))
            .bind(i64::from(user.is_guest))
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict(e, || format!("user {user_id}")))?;
            if let Some(session) = session {
                let device_id = session.device_id.as_str();
                let _created =
                    insert_device!(tx, user_id, device_id, session.display_name.as_deref(), now);
                insert_token!(tx, session, user_id, device_id, now);
            }
            tx.commit().await?;
            Ok(())
        });
        // Any account write may revoke a token (or its owner): forget them all.
        self.caches.tokens.clear();
        written
    }

    /// A user by id, deactivated or not.
    pub async fn user(&self, user_id: &UserId) -> Result<Option<StoredUser>, StoreError> {
        with_reader!(&self.db, |pool| {
            let Some(row) = sqlx::query(
                "SELECT user_id, password_hash, is_admin, is_guest, deactivated, created_at_ms
                 FROM users WHERE user_id = $1",
            )
            .bind(user_id.as_str())
            .fetch_optional(pool)
            .await?
            else {
                return Ok(None);
            };
            Ok(Some(StoredUser {
                user_id: parse_user_id(row.try_get("user_id")?)?,
                password_hash: row.try_get("password_hash")?,
                is_admin: row.try_get::<i64, _>("is_admin")? != 0,
                is_guest: row.try_get::<i64, _>("is_guest")? != 0,
                deactivated: row.try_get::<i64, _>("deactivated")? != 0,
                created_at_ms: row.try_get("created_at_ms")?,
            }))
        })
    }

    /// Whether the user id is taken (by an active or a deactivated account).
    pub async fn user_exists(&self, user_id: &UserId) -> Result<bool, StoreError> {
        with_reader!(&self.db, |pool| {
            // COUNT is BIGINT on both backends (a bare `SELECT 1` is INT4 on PostgreSQL).
            let found: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE user_id = $1")
                .bind(user_id.as_str())
                .fetch_one(pool)
                .await?;
            Ok(found > 0)
        })
    }

    /// Make a guest account a full one. Returns whether it was a guest.
    pub async fn upgrade_guest(&self, user_id: &UserId) -> Result<bool, StoreError> {
        let written = with_writer!(&self.db, |pool| {
            Ok(
                sqlx::query("UPDATE users SET is_guest = 0 WHERE user_id = $1 AND is_guest = 1")
                    .bind(user_id.as_str())
                    .execute(pool)
                    .await?
                    .rows_affected()
                    > 0,
            )
        });
        // Tokens carry whether their owner is a guest: forget them all.
        self.caches.tokens.clear();
        written
    }

    /// Replace the user's password hash (`None`: no password login) and remove the named devices
    /// with their tokens, in one transaction. Returns whether the user exists.
    pub async fn set_password_hash(
        &self,
        user_id: &UserId,
        password_hash: Option<&str>,
        remove: RemoveDevices<'_>,
    ) -> Result<bool, StoreError> {
        let user = user_id.as_str();
        let written = with_writer!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            let found = sqlx::query("UPDATE users SET password_hash = $2 WHERE user_id = $1")
                .bind(user)
                .bind(password_hash)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                > 0;
            if !found {
                return Ok(false);
            }
            let deleted = match remove {
                RemoveDevices::None => 0,
                RemoveDevices::All => delete_user_devices!(tx, user, None),
                RemoveDevices::AllExcept(keep) => {
                    delete_user_devices!(tx, user, Some(keep.as_str()))
                }
            };
            let moved = if deleted > 0 {
                Some(record_device_list_change!(tx, user))
            } else {
                None
            };
            tx.commit().await?;
            Ok((true, moved))
        });
        // Any account write may revoke a token (or its owner): forget them all.
        self.caches.tokens.clear();
        self.devices_went(user_id, written)
    }

    /// Mark the user (de)activated. Deactivating also removes the password hash and every device
    /// and access token, in the same transaction. Returns whether the user exists.
    pub async fn set_deactivated(
        &self,
        user_id: &UserId,
        deactivated: bool,
    ) -> Result<bool, StoreError> {
        let user = user_id.as_str();
        let written = with_writer!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            let found = if deactivated {
                sqlx::query(
                    "UPDATE users SET deactivated = 1, password_hash = NULL WHERE user_id = $1",
                )
            } else {
                sqlx::query("UPDATE users SET deactivated = 0 WHERE user_id = $1")
            }
            .bind(user)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                > 0;
            if !found {
                return Ok(false);
            }
            let mut moved = None;
            if deactivated && delete_user_devices!(tx, user, None) > 0 {
                moved = Some(record_device_list_change!(tx, user));
            }
            tx.commit().await?;
            Ok((true, moved))
        });
        // Any account write may revoke a token (or its owner): forget them all.
        self.caches.tokens.clear();
        self.devices_went(user_id, written)
    }

    /// Create a device unless it exists (a known device keeps its display name).
    /// Returns whether it was created.
    pub async fn create_device(
        &self,
        user_id: &UserId,
        device_id: &DeviceId,
        display_name: Option<&str>,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        let written = with_writer!(&self.db, |pool| {
            let mut conn = pool.acquire().await?;
            Ok(insert_device!(
                conn,
                user_id.as_str(),
                device_id.as_str(),
                display_name,
                now
            ))
        });
        // Any account write may revoke a token (or its owner): forget them all.
        self.caches.tokens.clear();
        written
    }

    /// Sign a device in: create it if new, revoke the tokens it had, and store the new token's
    /// hash, in one transaction.
    pub async fn start_session(
        &self,
        user_id: &UserId,
        session: &NewSession,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let user = user_id.as_str();
        let device = session.device_id.as_str();
        let written = with_writer!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            let _created = insert_device!(tx, user, device, session.display_name.as_deref(), now);
            sqlx::query("DELETE FROM access_tokens WHERE user_id = $1 AND device_id = $2")
                .bind(user)
                .bind(device)
                .execute(&mut *tx)
                .await?;
            insert_token!(tx, session, user, device, now);
            tx.commit().await?;
            Ok(())
        });
        // Any account write may revoke a token (or its owner): forget them all.
        self.caches.tokens.clear();
        written
    }

    /// The user's devices, ordered by device id.
    pub async fn devices(&self, user_id: &UserId) -> Result<Vec<StoredDevice>, StoreError> {
        with_reader!(&self.db, |pool| {
            let rows = sqlx::query(
                "SELECT user_id, device_id, display_name, last_seen_ms, created_at_ms
                 FROM devices WHERE user_id = $1 ORDER BY device_id",
            )
            .bind(user_id.as_str())
            .fetch_all(pool)
            .await?;
            rows.iter().map(device_from_row).collect()
        })
    }

    /// One device of a user.
    pub async fn device(
        &self,
        user_id: &UserId,
        device_id: &DeviceId,
    ) -> Result<Option<StoredDevice>, StoreError> {
        with_reader!(&self.db, |pool| {
            let row = sqlx::query(
                "SELECT user_id, device_id, display_name, last_seen_ms, created_at_ms
                 FROM devices WHERE user_id = $1 AND device_id = $2",
            )
            .bind(user_id.as_str())
            .bind(device_id.as_str())
            .fetch_optional(pool)
            .await?;
            row.as_ref().map(device_from_row).transpose()
        })
    }

    /// Set (or with `None` clear) a device's display name. Returns whether the device exists.
    pub async fn rename_device(
        &self,
        user_id: &UserId,
        device_id: &DeviceId,
        display_name: Option<&str>,
    ) -> Result<bool, StoreError> {
        let written = with_writer!(&self.db, |pool| {
            let done = sqlx::query(
                "UPDATE devices SET display_name = $3 WHERE user_id = $1 AND device_id = $2",
            )
            .bind(user_id.as_str())
            .bind(device_id.as_str())
            .bind(display_name)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() > 0)
        });
        // Any account write may revoke a token (or its owner): forget them all.
        self.caches.tokens.clear();
        written
    }

    /// Delete a device together with its access tokens. Returns whether the device existed.
    pub async fn delete_device(
        &self,
        user_id: &UserId,
        device_id: &DeviceId,
    ) -> Result<bool, StoreError> {
        let written = with_writer!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            let found = delete_device!(tx, user_id.as_str(), device_id.as_str());
            let moved = if found {
                Some(record_device_list_change!(tx, user_id.as_str()))
            } else {
                None
            };
            tx.commit().await?;
            Ok((found, moved))
        });
        // Any account write may revoke a token (or its owner): forget them all.
        self.caches.tokens.clear();
        self.devices_went(user_id, written)
    }

    /// Delete several devices with their tokens in one transaction; unknown ids are skipped.
    /// Returns how many devices were deleted.
    pub async fn delete_devices(
        &self,
        user_id: &UserId,
        device_ids: &[OwnedDeviceId],
    ) -> Result<u64, StoreError> {
        let written = with_writer!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            let mut deleted = 0;
            for device_id in device_ids {
                if delete_device!(tx, user_id.as_str(), device_id.as_str()) {
                    deleted += 1;
                }
            }
            let moved = if deleted > 0 {
                Some(record_device_list_change!(tx, user_id.as_str()))
            } else {
                None
            };
            tx.commit().await?;
            Ok((deleted, moved))
        });
        // Any account write may revoke a token (or its owner): forget them all.
        self.caches.tokens.clear();
        self.devices_went(user_id, written)
    }

    /// Delete all of a user's devices with their tokens, except `keep` if given.
    /// Returns how many devices were deleted.
    pub async fn delete_user_devices(
        &self,
        user_id: &UserId,
        keep: Option<&DeviceId>,
    ) -> Result<u64, StoreError> {
        let written = with_writer!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            let deleted = delete_user_devices!(tx, user_id.as_str(), keep.map(DeviceId::as_str));
            let moved = if deleted > 0 {
                Some(record_device_list_change!(tx, user_id.as_str()))
            } else {
                None
            };
            tx.commit().await?;
            Ok((deleted, moved))
        });
        // Any account write may revoke a token (or its owner): forget them all.
        self.caches.tokens.clear();
        self.devices_went(user_id, written)
    }

    /// After devices were deleted: publish the device-list change their deletion recorded.
    pub(crate) fn devices_went<T>(
        &self,
        user: &UserId,
        written: Result<(T, Option<i64>), StoreError>,
    ) -> Result<T, StoreError> {
        let (answer, moved) = written?;
        if let Some(position) = moved {
            self.device_list_moved(position, vec![user.to_owned()]);
        }
        Ok(answer)
    }

    /// Store an access token's hash for an existing device.
    pub async fn insert_access_token(
        &self,
        token_hash: &str,
        user_id: &UserId,
        device_id: &DeviceId,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let written = with_writer!(&self.db, |pool| {
            let mut conn = pool.acquire().await?;
            sqlx::query(
                "INSERT INTO access_tokens (token_hash, user_id, device_id, created_at_ms)
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(token_hash)
            .bind(user_id.as_str())
            .bind(device_id.as_str())
            .bind(now)
            .execute(&mut *conn)
            .await
            .map_err(|e| conflict(e, || "access token".to_owned()))?;
            Ok(())
        });
        // Any account write may revoke a token (or its owner): forget them all.
        self.caches.tokens.clear();
        written
    }

    /// Trade a refresh token for a new session of the same device: the device's access tokens
    /// end and `new`'s tokens start, in one transaction. The refresh token itself stays valid
    /// until the new access or refresh token is first used, so that a client that lost the
    /// answer can refresh again (and a repeat replaces what the lost answer held). `None` if
    /// the refresh token is unknown or retired.
    pub async fn refresh_session(
        &self,
        refresh_hash: &str,
        new: &NewSession,
    ) -> Result<Option<(OwnedUserId, OwnedDeviceId)>, StoreError> {
        let now = now_ms();
        let written = with_writer!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            let Some(row) = sqlx::query(
                "SELECT user_id, device_id, parent_hash FROM refresh_tokens WHERE token_hash = $1",
            )
            .bind(refresh_hash)
            .fetch_optional(&mut *tx)
            .await?
            else {
                return Ok(None);
            };
            let user: String = row.try_get("user_id")?;
            let device: String = row.try_get("device_id")?;
            let parent: Option<String> = row.try_get("parent_hash")?;
            // Using a successor retires the token it replaced.
            if let Some(parent) = parent {
                sqlx::query("DELETE FROM refresh_tokens WHERE token_hash = $1")
                    .bind(parent)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("UPDATE refresh_tokens SET parent_hash = NULL WHERE token_hash = $1")
                    .bind(refresh_hash)
                    .execute(&mut *tx)
                    .await?;
            }
            // A repeated refresh replaces what the previous one handed out.
            sqlx::query("DELETE FROM refresh_tokens WHERE parent_hash = $1")
                .bind(refresh_hash)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM access_tokens WHERE user_id = $1 AND device_id = $2")
                .bind(&user)
                .bind(&device)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO access_tokens
                 (token_hash, user_id, device_id, created_at_ms, expires_at_ms, parent_refresh_hash)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(new.token_hash.as_str())
            .bind(&user)
            .bind(&device)
            .bind(now)
            .bind(new.expires_at_ms)
            .bind(refresh_hash)
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict(e, || "access token".to_owned()))?;
            if let Some(refresh) = &new.refresh_token_hash {
                sqlx::query(
                    "INSERT INTO refresh_tokens
                     (token_hash, user_id, device_id, created_at_ms, parent_hash)
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(refresh.as_str())
                .bind(&user)
                .bind(&device)
                .bind(now)
                .bind(refresh_hash)
                .execute(&mut *tx)
                .await
                .map_err(|e| conflict(e, || "refresh token".to_owned()))?;
            }
            tx.commit().await?;
            Ok(Some((parse_user_id(user)?, device.into())))
        });
        // Any account write may revoke a token (or its owner): forget them all.
        self.caches.tokens.clear();
        written
    }

    /// The first use of an access token that came from a refresh: the refresh token it
    /// replaced is retired for good.
    pub async fn retire_refreshed(&self, access_hash: &str) -> Result<(), StoreError> {
        let written = with_writer!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            let parent: Option<Option<String>> = sqlx::query_scalar(
                "SELECT parent_refresh_hash FROM access_tokens WHERE token_hash = $1",
            )
            .bind(access_hash)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(Some(parent)) = parent {
                sqlx::query("DELETE FROM refresh_tokens WHERE token_hash = $1")
                    .bind(&parent)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("UPDATE refresh_tokens SET parent_hash = NULL WHERE parent_hash = $1")
                    .bind(&parent)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "UPDATE access_tokens SET parent_refresh_hash = NULL WHERE token_hash = $1",
                )
                .bind(access_hash)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok::<_, StoreError>(())
        });
        self.caches.tokens.invalidate(access_hash);
        written
    }

    /// Whom the token with this hash belongs to, or `None` for an unknown token.
    pub async fn access_token(&self, token_hash: &str) -> Result<Option<TokenOwner>, StoreError> {
        let ticket = match self.caches.tokens.get(token_hash) {
            Ok(known) => return Ok(Some(known)),
            Err(ticket) => ticket,
        };
        let found = self.read_access_token(token_hash).await?;
        if let Some(owner) = &found {
            self.caches
                .tokens
                .fill(ticket, token_hash.to_owned(), owner.clone());
        }
        Ok(found)
    }

    async fn read_access_token(&self, token_hash: &str) -> Result<Option<TokenOwner>, StoreError> {
        with_reader!(&self.db, |pool| {
            let Some(row) = sqlx::query(
                "SELECT t.user_id, t.device_id, t.expires_at_ms, t.parent_refresh_hash,
                        u.is_admin, u.is_guest, u.deactivated
                 FROM access_tokens t JOIN users u ON u.user_id = t.user_id
                 WHERE t.token_hash = $1",
            )
            .bind(token_hash)
            .fetch_optional(pool)
            .await?
            else {
                return Ok(None);
            };
            let device_id: String = row.try_get("device_id")?;
            Ok(Some(TokenOwner {
                user_id: parse_user_id(row.try_get("user_id")?)?,
                device_id: device_id.into(),
                is_admin: row.try_get::<i64, _>("is_admin")? != 0,
                is_guest: row.try_get::<i64, _>("is_guest")? != 0,
                deactivated: row.try_get::<i64, _>("deactivated")? != 0,
                expires_at_ms: row.try_get("expires_at_ms")?,
                retires_refresh: row
                    .try_get::<Option<String>, _>("parent_refresh_hash")?
                    .is_some(),
            }))
        })
    }

    /// Revoke one access token (its device stays). Returns whether it existed.
    pub async fn delete_access_token(&self, token_hash: &str) -> Result<bool, StoreError> {
        let written = with_writer!(&self.db, |pool| {
            let done = sqlx::query("DELETE FROM access_tokens WHERE token_hash = $1")
                .bind(token_hash)
                .execute(pool)
                .await?;
            Ok(done.rows_affected() > 0)
        });
        // Any account write may revoke a token (or its owner): forget them all.
        self.caches.tokens.clear();
        written
    }

    /// Revoke all of a user's access tokens (devices stay), except those of `keep` if given.
    /// Returns how many tokens were revoked.
    pub async fn delete_user_access_tokens(
        &self,
        user_id: &UserId,
        keep: Option<&DeviceId>,
    ) -> Result<u64, StoreError> {
        let written = with_writer!(&self.db, |pool| {
            let done = match keep {
                Some(keep) => {
                    sqlx::query("DELETE FROM access_tokens WHERE user_id = $1 AND device_id <> $2")
                        .bind(user_id.as_str())
                        .bind(keep.as_str())
                        .execute(pool)
                        .await?
                }
                None => {
                    sqlx::query("DELETE FROM access_tokens WHERE user_id = $1")
                        .bind(user_id.as_str())
                        .execute(pool)
                        .await?
                }
            };
            Ok(done.rows_affected())
        });
        // Any account write may revoke a token (or its owner): forget them all.
        self.caches.tokens.clear();
        written
    }
}
