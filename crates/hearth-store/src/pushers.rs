//! Pushers: where a user's notifications are to be pushed (a push gateway URL and the app's
//! push key). Each belongs to the device that set it, and goes with it (logout, device
//! deletion, a password change that signs the other devices out).

use ruma::{DeviceId, UserId};

use crate::db::{with_reader, with_writer};
use crate::{Store, StoreError};

/// A pusher to store: its ids and its JSON as the client API shows it.
#[derive(Debug, Clone)]
pub struct NewPusher<'a> {
    pub user: &'a UserId,
    pub device: &'a DeviceId,
    pub app_id: &'a str,
    pub pushkey: &'a str,
    pub json: &'a str,
}

impl Store {
    /// Create or replace a pusher. Without `append`, the same app and push key registered by
    /// any other user goes (the device changed hands), as the spec asks.
    pub async fn set_pusher(&self, pusher: NewPusher<'_>, append: bool) -> Result<(), StoreError> {
        let now = crate::migrations::now_ms();
        with_writer!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            if !append {
                sqlx::query(
                    "DELETE FROM pushers WHERE app_id = $1 AND pushkey = $2 AND user_id <> $3",
                )
                .bind(pusher.app_id)
                .bind(pusher.pushkey)
                .bind(pusher.user.as_str())
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(
                "INSERT INTO pushers (user_id, app_id, pushkey, device_id, json, created_at_ms)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (user_id, app_id, pushkey) DO UPDATE SET
                 device_id = excluded.device_id, json = excluded.json",
            )
            .bind(pusher.user.as_str())
            .bind(pusher.app_id)
            .bind(pusher.pushkey)
            .bind(pusher.device.as_str())
            .bind(pusher.json)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Remove one of the user's pushers; whether it existed.
    pub async fn delete_pusher(
        &self,
        user: &UserId,
        app_id: &str,
        pushkey: &str,
    ) -> Result<bool, StoreError> {
        with_writer!(&self.db, |pool| {
            let deleted = sqlx::query(
                "DELETE FROM pushers WHERE user_id = $1 AND app_id = $2 AND pushkey = $3",
            )
            .bind(user.as_str())
            .bind(app_id)
            .bind(pushkey)
            .execute(pool)
            .await?
            .rows_affected();
            Ok(deleted > 0)
        })
    }

    /// The user's pushers, as stored JSON, oldest first.
    pub async fn pushers(&self, user: &UserId) -> Result<Vec<String>, StoreError> {
        with_reader!(&self.db, |pool| {
            Ok(sqlx::query_scalar(
                "SELECT json FROM pushers WHERE user_id = $1 ORDER BY created_at_ms, app_id, pushkey",
            )
            .bind(user.as_str())
            .fetch_all(pool)
            .await?)
        })
    }
}
