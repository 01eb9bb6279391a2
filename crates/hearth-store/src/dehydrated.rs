//! Dehydrated devices (MSC3814): at most one per user, a device like any other (its keys and
//! to-device queue are a device's) plus the client's encrypted pickle of it. Replacing or
//! deleting it removes the old device with everything it owned, and moves the user's device
//! list.

use ruma::{DeviceId, OwnedDeviceId, UserId};
use sqlx::Row;

use crate::accounts::{delete_device, insert_device};
use crate::db::{with_reader, with_writer};
use crate::keys::record_device_list_change;
use crate::migrations::now_ms;
use crate::{Store, StoreError};

/// Why a dehydrated device was not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DehydratedConflict {
    /// The id is taken by one of the user's ordinary devices.
    DeviceExists,
}

impl Store {
    /// Store the user's dehydrated device, replacing the one they had (which goes, with its
    /// keys and messages). The device is created without a session: nobody signs in as it.
    pub async fn put_dehydrated_device(
        &self,
        user: &UserId,
        device: &DeviceId,
        display_name: Option<&str>,
        device_data: &str,
    ) -> Result<Result<(), DehydratedConflict>, StoreError> {
        let now = now_ms();
        let (user_id, device_id) = (user.as_str(), device.as_str());
        let written = with_writer!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            let old: Option<String> =
                sqlx::query_scalar("SELECT device_id FROM dehydrated_devices WHERE user_id = $1")
                    .bind(user_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            let taken: Option<String> = match old.as_deref() == Some(device_id) {
                true => None,
                false => {
                    sqlx::query_scalar(
                        "SELECT device_id FROM devices WHERE user_id = $1 AND device_id = $2",
                    )
                    .bind(user_id)
                    .bind(device_id)
                    .fetch_optional(&mut *tx)
                    .await?
                }
            };
            if taken.is_some() {
                Ok((Err(DehydratedConflict::DeviceExists), None))
            } else {
                if let Some(old) = &old {
                    // The old pickle's keys are no longer the user's: a new id or not, start over.
                    let _gone = delete_device!(tx, user_id, old.as_str());
                }
                let _created = insert_device!(tx, user_id, device_id, display_name, now);
                sqlx::query(
                    "INSERT INTO dehydrated_devices (user_id, device_id, device_data)
                     VALUES ($1, $2, $3)",
                )
                .bind(user_id)
                .bind(device_id)
                .bind(device_data)
                .execute(&mut *tx)
                .await?;
                let moved = record_device_list_change!(tx, user_id);
                tx.commit().await?;
                Ok((Ok(()), Some(moved)))
            }
        });
        self.caches.tokens.clear();
        self.devices_went(user, written)
    }

    /// The user's dehydrated device: its id and pickle.
    pub async fn dehydrated_device(
        &self,
        user: &UserId,
    ) -> Result<Option<(OwnedDeviceId, String)>, StoreError> {
        with_reader!(&self.db, |pool| {
            let row = sqlx::query(
                "SELECT device_id, device_data FROM dehydrated_devices WHERE user_id = $1",
            )
            .bind(user.as_str())
            .fetch_optional(pool)
            .await?;
            match row {
                None => Ok(None),
                Some(row) => {
                    let device: String = row.try_get("device_id")?;
                    Ok(Some((device.into(), row.try_get("device_data")?)))
                }
            }
        })
    }

    /// Delete the user's dehydrated device (the device itself, with its keys and messages);
    /// its id, if there was one.
    pub async fn delete_dehydrated_device(
        &self,
        user: &UserId,
    ) -> Result<Option<OwnedDeviceId>, StoreError> {
        let user_id = user.as_str();
        let written = with_writer!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            let old: Option<String> =
                sqlx::query_scalar("SELECT device_id FROM dehydrated_devices WHERE user_id = $1")
                    .bind(user_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            match old {
                None => Ok((None, None)),
                Some(old) => {
                    let _gone = delete_device!(tx, user_id, old.as_str());
                    let moved = record_device_list_change!(tx, user_id);
                    tx.commit().await?;
                    Ok((Some(OwnedDeviceId::from(old)), Some(moved)))
                }
            }
        });
        self.caches.tokens.clear();
        self.devices_went(user, written)
    }
}
