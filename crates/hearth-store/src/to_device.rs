//! Send-to-device messages: a queue per device, on one stream whose positions are handed out
//! like account data's. A device acknowledges what it was sent by syncing from a later token,
//! and the messages up to that token are deleted then.

use ruma::{DeviceId, OwnedDeviceId, OwnedUserId, UserId};

use crate::db::{with_reader, with_writer};
use crate::keys::next_position;
use crate::{Store, StoreError};

/// One message to queue for one device.
#[derive(Debug, Clone)]
pub struct ToDeviceMessage {
    pub user: OwnedUserId,
    pub device: OwnedDeviceId,
    /// The content, a JSON object.
    pub content: String,
}

/// A queued message, as sync delivers it.
#[derive(Debug, Clone)]
pub struct ToDeviceRow {
    pub stream_ordering: i64,
    pub sender: OwnedUserId,
    pub event_type: String,
    pub content: String,
}

impl Store {
    /// Queue messages from `sender`. With `once` (a local sender's device and transaction id),
    /// once per transaction: returns `false` (and queues nothing) when that transaction was
    /// already sent. A remote sender's messages come without (its server's transactions are
    /// deduplicated before). Messages to devices that do not exist are dropped.
    pub async fn send_to_device(
        &self,
        sender: &UserId,
        once: Option<(&DeviceId, &str)>,
        event_type: &str,
        messages: &[ToDeviceMessage],
    ) -> Result<bool, StoreError> {
        let queued: Option<Vec<(ToDeviceMessage, i64)>> = with_writer!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            let first = match once {
                Some((sender_device, txn_id)) => {
                    sqlx::query(
                        "INSERT INTO to_device_txns (user_id, device_id, txn_id)
                         VALUES ($1, $2, $3)
                         ON CONFLICT (user_id, device_id, txn_id) DO NOTHING",
                    )
                    .bind(sender.as_str())
                    .bind(sender_device.as_str())
                    .bind(txn_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                        > 0
                }
                None => true,
            };
            if first {
                let last = next_position!(tx, "to_device", messages.len().max(1));
                let first_position = last - i64::try_from(messages.len()).unwrap_or(0) + 1;
                let mut queued = Vec::with_capacity(messages.len());
                for (position, message) in (first_position..).zip(messages) {
                    let done = sqlx::query(
                        "INSERT INTO to_device
                             (stream_ordering, user_id, device_id, sender, event_type, content)
                         SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (
                             SELECT 1 FROM devices WHERE user_id = $2 AND device_id = $3)",
                    )
                    .bind(position)
                    .bind(message.user.as_str())
                    .bind(message.device.as_str())
                    .bind(sender.as_str())
                    .bind(event_type)
                    .bind(&message.content)
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() > 0 {
                        // Raised before the commit (see `Bounds`).
                        self.caches
                            .to_device_bounds
                            .raise((message.user.clone(), message.device.clone()), position);
                        queued.push((message.clone(), position));
                    }
                }
                tx.commit().await?;
                Some(queued)
            } else {
                None
            }
        });
        let Some(queued) = queued else {
            return Ok(false);
        };
        if let Some((_, last)) = queued.last() {
            self.positions
                .to_device
                .fetch_max(*last, std::sync::atomic::Ordering::AcqRel);
            self.notifier.publish(crate::News {
                devices: queued
                    .iter()
                    .map(|(message, _)| (message.user.clone(), message.device.clone()))
                    .collect(),
                ..crate::News::default()
            });
        }
        Ok(true)
    }

    /// Up to `limit` messages for a device after `since`, up to `upto`, oldest first.
    pub async fn to_device_since(
        &self,
        user: &UserId,
        device: &DeviceId,
        since: i64,
        upto: i64,
        limit: usize,
    ) -> Result<Vec<ToDeviceRow>, StoreError> {
        let key = (user.to_owned(), device.to_owned());
        if since >= upto || self.caches.to_device_bounds.nothing_after(&key, since) {
            return Ok(Vec::new());
        }
        let rows: Vec<(i64, String, String, String)> = with_reader!(&self.db, |pool| {
            sqlx::query_as(
                "SELECT stream_ordering, sender, event_type, content FROM to_device
                 WHERE user_id = $1 AND device_id = $2
                   AND stream_ordering > $3 AND stream_ordering <= $4
                 ORDER BY stream_ordering LIMIT $5",
            )
            .bind(user.as_str())
            .bind(device.as_str())
            .bind(since)
            .bind(upto)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(pool)
            .await?
        });
        let mut out = Vec::with_capacity(rows.len());
        for (stream_ordering, sender, event_type, content) in rows {
            out.push(ToDeviceRow {
                stream_ordering,
                sender: OwnedUserId::try_from(sender.as_str())
                    .map_err(|e| StoreError::Corrupt(format!("sender {sender:?}: {e}")))?,
                event_type,
                content,
            });
        }
        if let Some(last) = out.last() {
            self.caches
                .to_device_delivered
                .note(key.clone(), last.stream_ordering);
        }
        if out.len() < limit {
            self.caches.to_device_bounds.raise(key, upto);
        }
        Ok(out)
    }

    /// Delete a device's messages up to `upto`: it has seen them. Costs a write only when
    /// this process delivered messages up to there that are not deleted yet (after a restart,
    /// what was delivered before waits for the next acknowledgement).
    pub async fn acknowledge_to_device(
        &self,
        user: &UserId,
        device: &DeviceId,
        upto: i64,
    ) -> Result<(), StoreError> {
        let key = (user.to_owned(), device.to_owned());
        if !self.caches.to_device_delivered.take_through(&key, upto) {
            return Ok(());
        }
        with_writer!(&self.db, |pool| {
            sqlx::query(
                "DELETE FROM to_device
                 WHERE user_id = $1 AND device_id = $2 AND stream_ordering <= $3",
            )
            .bind(user.as_str())
            .bind(device.as_str())
            .bind(upto)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The newest to-device position.
    pub fn max_to_device_stream(&self) -> i64 {
        self.positions
            .to_device
            .load(std::sync::atomic::Ordering::Acquire)
    }
}
