//! Registration tokens (`m.login.registration_token`): who may register while registration
//! requires a token.
//!
//! A token's `pending` count is the registrations that passed the token stage and have not
//! finished yet; `completed` is the registrations it let through. A token is usable while it has
//! not expired and `pending + completed` is below `uses_allowed` (no limit when that is NULL), so
//! that several people registering at once cannot overdraw it. Every check-and-count is one
//! conditional `UPDATE`, atomic on both backends.

use sqlx::Row;

use crate::db::{with_reader, with_writer};
use crate::migrations::now_ms;
use crate::{RegistrationTokenRow, Store, StoreError};

fn token_from_row<R>(row: &R) -> Result<RegistrationTokenRow, StoreError>
where
    R: Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(RegistrationTokenRow {
        token: row.try_get("token")?,
        uses_allowed: row.try_get("uses_allowed")?,
        pending: row.try_get("pending")?,
        completed: row.try_get("completed")?,
        expiry_ms: row.try_get("expiry_ms")?,
    })
}

impl Store {
    /// Store a new token. Fails with [`StoreError::Conflict`] if it exists already.
    pub async fn create_registration_token(
        &self,
        token: &str,
        uses_allowed: Option<i64>,
        expiry_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        with_writer!(&self.db, |pool| {
            sqlx::query(
                "INSERT INTO registration_tokens (token, uses_allowed, pending, completed, expiry_ms)
                 VALUES ($1, $2, 0, 0, $3)",
            )
            .bind(token)
            .bind(uses_allowed)
            .bind(expiry_ms)
            .execute(pool)
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(db) if db.is_unique_violation() => {
                    StoreError::Conflict(format!("registration token {token}"))
                }
                _ => e.into(),
            })?;
            Ok(())
        })
    }

    /// Every token, ordered by token.
    pub async fn registration_tokens(&self) -> Result<Vec<RegistrationTokenRow>, StoreError> {
        with_reader!(&self.db, |pool| {
            let rows = sqlx::query(
                "SELECT token, uses_allowed, pending, completed, expiry_ms
                 FROM registration_tokens ORDER BY token",
            )
            .fetch_all(pool)
            .await?;
            rows.iter().map(token_from_row).collect()
        })
    }

    /// One token, if it exists.
    pub async fn registration_token(
        &self,
        token: &str,
    ) -> Result<Option<RegistrationTokenRow>, StoreError> {
        with_reader!(&self.db, |pool| {
            let row = sqlx::query(
                "SELECT token, uses_allowed, pending, completed, expiry_ms
                 FROM registration_tokens WHERE token = $1",
            )
            .bind(token)
            .fetch_optional(pool)
            .await?;
            row.as_ref().map(token_from_row).transpose()
        })
    }

    /// Count a registration in progress against the token if it is still usable (exists, not
    /// expired, uses left). Returns whether it was.
    pub async fn reserve_registration_token(&self, token: &str) -> Result<bool, StoreError> {
        let now = now_ms();
        with_writer!(&self.db, |pool| {
            let done = sqlx::query(
                "UPDATE registration_tokens SET pending = pending + 1
                 WHERE token = $1
                   AND (expiry_ms IS NULL OR expiry_ms > $2)
                   AND (uses_allowed IS NULL OR pending + completed < uses_allowed)",
            )
            .bind(token)
            .bind(now)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// A registration reserved with the token was abandoned: give the use back. (`pending` never
    /// drops below zero: after a restart reset, a late release may find it at 0.)
    pub async fn release_registration_token(&self, token: &str) -> Result<(), StoreError> {
        with_writer!(&self.db, |pool| {
            sqlx::query(
                "UPDATE registration_tokens
                 SET pending = CASE WHEN pending > 0 THEN pending - 1 ELSE 0 END
                 WHERE token = $1",
            )
            .bind(token)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// A registration reserved with the token completed: the use is spent.
    pub async fn complete_registration_token(&self, token: &str) -> Result<(), StoreError> {
        with_writer!(&self.db, |pool| {
            sqlx::query(
                "UPDATE registration_tokens
                 SET pending = CASE WHEN pending > 0 THEN pending - 1 ELSE 0 END,
                     completed = completed + 1
                 WHERE token = $1",
            )
            .bind(token)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Forget every pending use. Registrations in progress live in the memory of the process
    /// that started them, so after a restart none are pending any more.
    pub async fn reset_pending_registration_tokens(&self) -> Result<(), StoreError> {
        with_writer!(&self.db, |pool| {
            sqlx::query("UPDATE registration_tokens SET pending = 0 WHERE pending <> 0")
                .execute(pool)
                .await?;
            Ok(())
        })
    }
}
