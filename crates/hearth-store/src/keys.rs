//! End-to-end encryption keys: the identity keys each device publishes, its one-time and
//! fallback keys, the user's cross-signing keys, signatures uploaded separately, and the
//! device-list stream that tells other users whose keys changed.
//!
//! Keys are stored as the canonical JSON the device signed; this crate neither parses nor
//! checks them (`hearth-e2ee` does). A device-list change is recorded in the same transaction
//! as the change itself, so a client that sees the new position always finds the new keys.

use std::collections::BTreeMap;

use ruma::{DeviceId, OwnedDeviceId, OwnedUserId, UserId};

use crate::db::{Db, with_reader, with_writer};
use crate::{Store, StoreError};

/// Take `$count` positions of a stream (`stream_positions.stream`) inside the writing
/// transaction; evaluates to the last of them. The counter's row stays locked until the
/// transaction ends, so writers of one stream commit in position order; and since it is
/// never lowered, a position is never handed out twice, even once its rows are deleted.
macro_rules! next_position {
    ($tx:expr, $stream:expr, $count:expr) => {{
        let position: i64 = sqlx::query_scalar(
            "UPDATE stream_positions SET position = position + $1 WHERE stream = $2
             RETURNING position",
        )
        .bind(i64::try_from($count).unwrap_or(i64::MAX))
        .bind($stream)
        .fetch_one(&mut *$tx)
        .await?;
        position
    }};
}

/// Record that `$user`'s device list changed, at the next device-list position.
macro_rules! record_device_list_change {
    ($tx:expr, $user:expr) => {{
        let position = $crate::keys::next_position!($tx, "device_lists", 1);
        sqlx::query("INSERT INTO device_list_changes (stream_ordering, user_id) VALUES ($1, $2)")
            .bind(position)
            .bind($user)
            .execute(&mut *$tx)
            .await?;
        position
    }};
}

pub(crate) use {next_position, record_device_list_change};

/// What one `keys/upload` stores, all in one transaction.
#[derive(Debug, Default)]
pub struct KeyUpload {
    /// The device's signed identity keys (canonical JSON), if uploaded.
    pub device_keys: Option<String>,
    /// One-time keys: `(algorithm:key_id, algorithm, canonical JSON)`.
    pub one_time_keys: Vec<(String, String, String)>,
    /// Fallback keys: `(algorithm:key_id, algorithm, canonical JSON)`, replacing the device's
    /// fallback key of that algorithm.
    pub fallback_keys: Vec<(String, String, String)>,
}

/// Why an upload was refused (nothing of it was stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadConflict {
    /// A one-time key id the device already uploaded, with other content.
    OneTimeKey(String),
}

/// A key claimed for a device: `(algorithm:key_id, canonical JSON)`.
pub type ClaimedKey = (String, String);

/// A signature uploaded with `keys/signatures/upload`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySignature {
    /// The user whose key is signed.
    pub target_user: OwnedUserId,
    /// The signed key: a device id, or a cross-signing key's public key (base64).
    pub target_key: String,
    pub signer_user: OwnedUserId,
    /// `ed25519:...` of the signing key.
    pub signer_key: String,
    pub signature: String,
}

impl Store {
    /// Store one upload of keys from a device. Returns the conflict that refused it, if any.
    /// New or changed device keys move the user on the device-list stream.
    pub async fn upload_keys(
        &self,
        user: &UserId,
        device: &DeviceId,
        upload: &KeyUpload,
    ) -> Result<Option<UploadConflict>, StoreError> {
        let outcome: (Option<UploadConflict>, Option<i64>) = with_writer!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            let mut conflict = None;
            for (key_id, _, key) in &upload.one_time_keys {
                let existing: Option<String> = sqlx::query_scalar(
                    "SELECT key_json FROM one_time_keys
                     WHERE user_id = $1 AND device_id = $2 AND key_id = $3",
                )
                .bind(user.as_str())
                .bind(device.as_str())
                .bind(key_id)
                .fetch_optional(&mut *tx)
                .await?;
                if existing.as_ref().is_some_and(|e| e != key) {
                    conflict = Some(UploadConflict::OneTimeKey(key_id.clone()));
                    break;
                }
            }
            if conflict.is_some() {
                (conflict, None)
            } else {
                let mut moved = None;
                if let Some(keys) = &upload.device_keys {
                    let existing: Option<String> = sqlx::query_scalar(
                        "SELECT keys FROM device_keys WHERE user_id = $1 AND device_id = $2",
                    )
                    .bind(user.as_str())
                    .bind(device.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
                    if existing.as_ref() != Some(keys) {
                        sqlx::query(
                            "INSERT INTO device_keys (user_id, device_id, keys) VALUES ($1, $2, $3)
                         ON CONFLICT (user_id, device_id) DO UPDATE SET keys = excluded.keys",
                        )
                        .bind(user.as_str())
                        .bind(device.as_str())
                        .bind(keys)
                        .execute(&mut *tx)
                        .await?;
                        moved = Some(record_device_list_change!(tx, user.as_str()));
                    }
                }
                for (key_id, algorithm, key) in &upload.one_time_keys {
                    sqlx::query(
                    "INSERT INTO one_time_keys (user_id, device_id, key_id, algorithm, key_json)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (user_id, device_id, key_id) DO NOTHING",
                )
                .bind(user.as_str())
                .bind(device.as_str())
                .bind(key_id)
                .bind(algorithm)
                .bind(key)
                .execute(&mut *tx)
                .await?;
                }
                for (key_id, algorithm, key) in &upload.fallback_keys {
                    // The same key again keeps its `used` mark; a new one starts unused.
                    sqlx::query(
                    "INSERT INTO fallback_keys (user_id, device_id, algorithm, key_id, key_json)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (user_id, device_id, algorithm) DO UPDATE
                     SET key_id = excluded.key_id, key_json = excluded.key_json,
                         used = CASE WHEN fallback_keys.key_json = excluded.key_json
                                     THEN fallback_keys.used ELSE 0 END",
                )
                .bind(user.as_str())
                .bind(device.as_str())
                .bind(algorithm)
                .bind(key_id)
                .bind(key)
                .execute(&mut *tx)
                .await?;
                }
                tx.commit().await?;
                (None, moved)
            }
        });
        self.caches
            .key_counts
            .invalidate(&(user.to_owned(), device.to_owned()));
        if let Some(position) = outcome.1 {
            self.device_list_moved(position, vec![user.to_owned()]);
        }
        Ok(outcome.0)
    }

    /// Publish a committed device-list position, waking the syncs of the users whose keys
    /// moved and of everyone who shares a room with them.
    pub(crate) fn device_list_moved(&self, position: i64, users: Vec<OwnedUserId>) {
        self.positions
            .device_lists
            .fetch_max(position, std::sync::atomic::Ordering::AcqRel);
        self.publish_to_roommates(users);
    }

    /// The published device keys of a user's devices (all of them when `devices` is empty),
    /// by device id.
    pub async fn device_keys(
        &self,
        user: &UserId,
        devices: &[OwnedDeviceId],
    ) -> Result<BTreeMap<OwnedDeviceId, String>, StoreError> {
        let rows: Vec<(String, String)> = with_reader!(&self.db, |pool| {
            sqlx::query_as("SELECT device_id, keys FROM device_keys WHERE user_id = $1")
                .bind(user.as_str())
                .fetch_all(pool)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|(device, keys)| (OwnedDeviceId::from(device), keys))
            .filter(|(device, _)| devices.is_empty() || devices.contains(device))
            .collect())
    }

    /// How many unclaimed one-time keys a device has, by algorithm; and the algorithms of its
    /// unused fallback keys. Kept in memory until the device uploads or a key is claimed.
    pub async fn key_counts(
        &self,
        user: &UserId,
        device: &DeviceId,
    ) -> Result<std::sync::Arc<KeyCounts>, StoreError> {
        let key = (user.to_owned(), device.to_owned());
        let ticket = match self.caches.key_counts.get(&key) {
            Ok(counts) => return Ok(counts),
            Err(ticket) => ticket,
        };
        let (counts, fallback): (Vec<(String, i64)>, Vec<String>) =
            with_reader!(&self.db, |pool| {
                let counts = sqlx::query_as(
                    "SELECT algorithm, COUNT(*) FROM one_time_keys
                     WHERE user_id = $1 AND device_id = $2 GROUP BY algorithm",
                )
                .bind(user.as_str())
                .bind(device.as_str())
                .fetch_all(pool)
                .await?;
                let fallback = sqlx::query_scalar(
                    "SELECT algorithm FROM fallback_keys
                     WHERE user_id = $1 AND device_id = $2 AND used = 0 ORDER BY algorithm",
                )
                .bind(user.as_str())
                .bind(device.as_str())
                .fetch_all(pool)
                .await?;
                (counts, fallback)
            });
        let counts = std::sync::Arc::new(KeyCounts {
            one_time: counts
                .into_iter()
                .map(|(a, n)| (a, u64::try_from(n).unwrap_or(0)))
                .collect(),
            unused_fallback: fallback,
        });
        self.caches.key_counts.fill(ticket, key, counts.clone());
        Ok(counts)
    }

    /// Claim one key of `algorithm` for each `(user, device)`: a one-time key (removed), or
    /// else the device's fallback key (marked used, still handed out). Devices with neither are
    /// left out of the answer.
    pub async fn claim_keys(
        &self,
        wanted: &[(OwnedUserId, OwnedDeviceId, String)],
    ) -> Result<Vec<(OwnedUserId, OwnedDeviceId, ClaimedKey)>, StoreError> {
        let claimed = with_writer!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            let mut claimed = Vec::new();
            for (user, device, algorithm) in wanted {
                let one_time: Option<(String, String)> = sqlx::query_as(
                    "SELECT key_id, key_json FROM one_time_keys
                     WHERE user_id = $1 AND device_id = $2 AND algorithm = $3
                     ORDER BY key_id LIMIT 1",
                )
                .bind(user.as_str())
                .bind(device.as_str())
                .bind(algorithm)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some((key_id, key)) = one_time {
                    sqlx::query(
                        "DELETE FROM one_time_keys
                         WHERE user_id = $1 AND device_id = $2 AND key_id = $3",
                    )
                    .bind(user.as_str())
                    .bind(device.as_str())
                    .bind(&key_id)
                    .execute(&mut *tx)
                    .await?;
                    claimed.push((user.clone(), device.clone(), (key_id, key)));
                    continue;
                }
                let fallback: Option<(String, String)> = sqlx::query_as(
                    "SELECT key_id, key_json FROM fallback_keys
                     WHERE user_id = $1 AND device_id = $2 AND algorithm = $3",
                )
                .bind(user.as_str())
                .bind(device.as_str())
                .bind(algorithm)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some((key_id, key)) = fallback {
                    sqlx::query(
                        "UPDATE fallback_keys SET used = 1
                         WHERE user_id = $1 AND device_id = $2 AND algorithm = $3",
                    )
                    .bind(user.as_str())
                    .bind(device.as_str())
                    .bind(algorithm)
                    .execute(&mut *tx)
                    .await?;
                    claimed.push((user.clone(), device.clone(), (key_id, key)));
                }
            }
            tx.commit().await?;
            Ok::<_, StoreError>(claimed)
        })?;
        for (user, device, _) in &claimed {
            self.caches
                .key_counts
                .invalidate(&(user.clone(), device.clone()));
        }
        Ok(claimed)
    }

    /// A user's cross-signing keys by type (`master`, `self_signing`, `user_signing`).
    pub async fn cross_signing_keys(
        &self,
        user: &UserId,
    ) -> Result<BTreeMap<String, String>, StoreError> {
        let rows: Vec<(String, String)> = with_reader!(&self.db, |pool| {
            sqlx::query_as("SELECT key_type, keys FROM cross_signing_keys WHERE user_id = $1")
                .bind(user.as_str())
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().collect())
    }

    /// Replace some of a user's cross-signing keys (`(type, canonical JSON)`), moving the user
    /// on the device-list stream. A new master key drops the signatures made on the old keys.
    pub async fn set_cross_signing_keys(
        &self,
        user: &UserId,
        keys: &[(String, String)],
    ) -> Result<(), StoreError> {
        let position = with_writer!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            for (key_type, json) in keys {
                sqlx::query(
                    "INSERT INTO cross_signing_keys (user_id, key_type, keys) VALUES ($1, $2, $3)
                     ON CONFLICT (user_id, key_type) DO UPDATE SET keys = excluded.keys",
                )
                .bind(user.as_str())
                .bind(key_type)
                .bind(json)
                .execute(&mut *tx)
                .await?;
            }
            let position = record_device_list_change!(tx, user.as_str());
            tx.commit().await?;
            Ok::<_, StoreError>(position)
        })?;
        self.device_list_moved(position, vec![user.to_owned()]);
        Ok(())
    }

    /// Store signatures, moving each signed user on the device-list stream.
    pub async fn add_key_signatures(&self, signatures: &[KeySignature]) -> Result<(), StoreError> {
        if signatures.is_empty() {
            return Ok(());
        }
        let mut users: Vec<&UserId> = signatures.iter().map(|s| &*s.target_user).collect();
        users.sort();
        users.dedup();
        let position = with_writer!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            for s in signatures {
                sqlx::query(
                    "INSERT INTO key_signatures
                         (target_user, target_key, signer_user, signer_key, signature)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (target_user, target_key, signer_user, signer_key)
                     DO UPDATE SET signature = excluded.signature",
                )
                .bind(s.target_user.as_str())
                .bind(&s.target_key)
                .bind(s.signer_user.as_str())
                .bind(&s.signer_key)
                .bind(&s.signature)
                .execute(&mut *tx)
                .await?;
            }
            let mut position = 0;
            for user in &users {
                position = record_device_list_change!(tx, user.as_str());
            }
            tx.commit().await?;
            Ok::<_, StoreError>(position)
        })?;
        self.device_list_moved(position, users.into_iter().map(ToOwned::to_owned).collect());
        Ok(())
    }

    /// The signatures uploaded on a user's keys.
    pub async fn key_signatures(&self, target: &UserId) -> Result<Vec<KeySignature>, StoreError> {
        let rows: Vec<(String, String, String, String)> = with_reader!(&self.db, |pool| {
            sqlx::query_as(
                "SELECT target_key, signer_user, signer_key, signature FROM key_signatures
                 WHERE target_user = $1",
            )
            .bind(target.as_str())
            .fetch_all(pool)
            .await?
        });
        let mut out = Vec::with_capacity(rows.len());
        for (target_key, signer, signer_key, signature) in rows {
            out.push(KeySignature {
                target_user: target.to_owned(),
                target_key,
                signer_user: OwnedUserId::try_from(signer.as_str())
                    .map_err(|e| StoreError::Corrupt(format!("signer {signer:?}: {e}")))?,
                signer_key,
                signature,
            });
        }
        Ok(out)
    }

    /// The users whose device lists changed after `from`, up to `to`.
    pub async fn device_list_changes(
        &self,
        from: i64,
        to: i64,
    ) -> Result<Vec<OwnedUserId>, StoreError> {
        if from >= to {
            return Ok(Vec::new());
        }
        let users: Vec<String> = with_reader!(&self.db, |pool| {
            sqlx::query_scalar(
                "SELECT DISTINCT user_id FROM device_list_changes
                 WHERE stream_ordering > $1 AND stream_ordering <= $2",
            )
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await?
        });
        users
            .into_iter()
            .map(|u| {
                OwnedUserId::try_from(u.as_str())
                    .map_err(|e| StoreError::Corrupt(format!("user id {u:?}: {e}")))
            })
            .collect()
    }

    /// The user's latest position on the device-list stream (0 if it never moved): the
    /// `stream_id` other servers compare device-list updates against.
    pub async fn device_list_stream_id(&self, user: &UserId) -> Result<i64, StoreError> {
        let position: Option<i64> = with_reader!(&self.db, |pool| {
            sqlx::query_scalar(
                "SELECT MAX(stream_ordering) FROM device_list_changes WHERE user_id = $1",
            )
            .bind(user.as_str())
            .fetch_one(pool)
            .await?
        });
        Ok(position.unwrap_or(0))
    }

    /// The newest device-list position.
    pub fn max_device_list_stream(&self) -> i64 {
        self.positions
            .device_lists
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Membership changes after `from`, up to `to`, in any room: `(room, user, membership)`.
    /// Only the current membership of each user is known, so a join and a leave in between
    /// read as the leave.
    pub async fn membership_changes(
        &self,
        from: i64,
        to: i64,
    ) -> Result<Vec<(ruma::OwnedRoomId, OwnedUserId, String)>, StoreError> {
        if from >= to
            || self
                .caches
                .memberships_moved
                .load(std::sync::atomic::Ordering::Acquire)
                <= from
        {
            return Ok(Vec::new());
        }
        let rows: Vec<(String, String, String)> = with_reader!(&self.db, |pool| {
            sqlx::query_as(
                "SELECT room_id, user_id, membership FROM room_memberships
                 WHERE stream_ordering > $1 AND stream_ordering <= $2",
            )
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(room, user, membership)| {
                let room = ruma::OwnedRoomId::try_from(room.as_str())
                    .map_err(|e| StoreError::Corrupt(format!("room id {room:?}: {e}")))?;
                let user = OwnedUserId::try_from(user.as_str())
                    .map_err(|e| StoreError::Corrupt(format!("user id {user:?}: {e}")))?;
                Ok((room, user, membership))
            })
            .collect()
    }
}

/// A device's key supply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyCounts {
    /// Unclaimed one-time keys by algorithm.
    pub one_time: BTreeMap<String, u64>,
    /// Algorithms of the device's unused fallback keys.
    pub unused_fallback: Vec<String>,
}

/// A stream's last position handed out (read once at start-up).
pub(crate) async fn stream_position(db: &Db, stream: &str) -> Result<i64, StoreError> {
    with_reader!(db, |pool| {
        Ok(
            sqlx::query_scalar("SELECT position FROM stream_positions WHERE stream = $1")
                .bind(stream)
                .fetch_one(pool)
                .await?,
        )
    })
}
