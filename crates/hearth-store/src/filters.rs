//! Sync filters that clients upload once and name by id afterwards.
//!
//! Filter ids are small decimal numbers counted per user. Uploading a filter the user already
//! has returns its existing id: clients upload the same filter at every start.

use ruma::UserId;

use crate::db::{Db, with_reader, with_writer};
use crate::{Store, StoreError};

/// `pg_advisory_xact_lock` key serialising filter creation on PostgreSQL (SQLite's single
/// writer connection already does).
const FILTER_LOCK: i64 = 0x6865_6172_7468_0005;

impl Store {
    /// Store a filter (its JSON as the caller serialised it) and return its id.
    pub async fn create_filter(&self, user: &UserId, json: &str) -> Result<String, StoreError> {
        let is_postgres = matches!(self.db, Db::Postgres(_));
        with_writer!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            if is_postgres {
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(FILTER_LOCK)
                    .execute(&mut *tx)
                    .await?;
            }
            let existing: Option<String> = sqlx::query_scalar(
                "SELECT filter_id FROM filters WHERE user_id = $1 AND json = $2 LIMIT 1",
            )
            .bind(user.as_str())
            .bind(json)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(id) = existing {
                return Ok(id);
            }
            let next: i64 = sqlx::query_scalar(
                "SELECT COALESCE(MAX(CAST(filter_id AS BIGINT)), -1) + 1
                 FROM filters WHERE user_id = $1",
            )
            .bind(user.as_str())
            .fetch_one(&mut *tx)
            .await?;
            let id = next.to_string();
            sqlx::query("INSERT INTO filters (user_id, filter_id, json) VALUES ($1, $2, $3)")
                .bind(user.as_str())
                .bind(&id)
                .bind(json)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(id)
        })
    }

    /// A filter's JSON, if the user has a filter with this id.
    pub async fn filter(
        &self,
        user: &UserId,
        filter_id: &str,
    ) -> Result<Option<String>, StoreError> {
        with_reader!(&self.db, |pool| {
            Ok(
                sqlx::query_scalar(
                    "SELECT json FROM filters WHERE user_id = $1 AND filter_id = $2",
                )
                .bind(user.as_str())
                .bind(filter_id)
                .fetch_optional(pool)
                .await?,
            )
        })
    }
}
