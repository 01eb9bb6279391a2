//! Server-side key backup (`/room_keys/...`): the server keeps encrypted room keys it cannot
//! read, one set per backup version, and when a session is uploaded twice keeps the better copy.

use std::collections::BTreeMap;

use hearth_store::{BackupVersion, RoomKeyRow, RoomKeyScope};
use ruma::api::client::backup::KeyBackupData;
use ruma::serde::Raw;
use ruma::{OwnedRoomId, UserId};

use crate::{E2ee, E2eeError, canonical_object};

/// A backup version as the endpoints report it.
#[derive(Debug, Clone)]
pub struct BackupVersionInfo {
    pub version: String,
    pub algorithm: String,
    /// JSON object.
    pub auth_data: String,
    pub etag: String,
    pub count: u64,
}

/// Sessions by room and session id.
pub type RoomKeys = BTreeMap<OwnedRoomId, BTreeMap<String, Raw<KeyBackupData>>>;

impl From<BackupVersion> for BackupVersionInfo {
    fn from(v: BackupVersion) -> Self {
        Self {
            version: v.version.to_string(),
            algorithm: v.algorithm,
            auth_data: v.auth_data,
            etag: v.etag.to_string(),
            count: u64::try_from(v.count).unwrap_or(0),
        }
    }
}

/// A version number as the client wrote it. Versions are decimal integers here; anything else
/// names no version.
fn parse_version(version: &str) -> Result<i64, E2eeError> {
    version
        .parse::<i64>()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| E2eeError::NotFound(format!("no backup version {version}")))
}

/// Of two copies of a session, whether the stored one is to be kept: a verified copy beats an
/// unverified one, then the lower first message index (it decrypts more), then the fewer
/// forwards.
fn keep_existing(old: &RoomKeyRow, new: &RoomKeyRow) -> bool {
    if old.is_verified != new.is_verified {
        return old.is_verified;
    }
    if old.first_message_index != new.first_message_index {
        return old.first_message_index < new.first_message_index;
    }
    old.forwarded_count <= new.forwarded_count
}

impl E2ee {
    /// `POST /room_keys/version`: a new version, which becomes the current one.
    pub async fn create_backup(
        &self,
        user: &UserId,
        algorithm: &str,
        auth_data: &str,
    ) -> Result<String, E2eeError> {
        canonical_object(auth_data, "auth_data")?;
        Ok(self
            .store
            .create_backup_version(user, algorithm, auth_data)
            .await?
            .to_string())
    }

    /// A version (the current one when `None`).
    pub async fn backup(
        &self,
        user: &UserId,
        version: Option<&str>,
    ) -> Result<BackupVersionInfo, E2eeError> {
        let wanted = version.map(parse_version).transpose()?;
        self.store
            .backup_version(user, wanted)
            .await?
            .map(BackupVersionInfo::from)
            .ok_or_else(|| match version {
                Some(v) => E2eeError::NotFound(format!("no backup version {v}")),
                None => E2eeError::NotFound("no backup yet".into()),
            })
    }

    /// `PUT /room_keys/version/{version}`: new `auth_data`; the algorithm cannot change.
    pub async fn update_backup(
        &self,
        user: &UserId,
        version: &str,
        algorithm: &str,
        auth_data: &str,
    ) -> Result<(), E2eeError> {
        let current = self.backup(user, Some(version)).await?;
        if current.algorithm != algorithm {
            return Err(E2eeError::InvalidParam(
                "a backup version's algorithm cannot change".into(),
            ));
        }
        canonical_object(auth_data, "auth_data")?;
        if !self
            .store
            .update_backup_version(user, parse_version(version)?, auth_data)
            .await?
        {
            return Err(E2eeError::NotFound(format!("no backup version {version}")));
        }
        Ok(())
    }

    /// `DELETE /room_keys/version/{version}`, with its keys.
    pub async fn delete_backup(&self, user: &UserId, version: &str) -> Result<(), E2eeError> {
        if !self
            .store
            .delete_backup_version(user, parse_version(version)?)
            .await?
        {
            return Err(E2eeError::NotFound(format!("no backup version {version}")));
        }
        Ok(())
    }

    /// `PUT /room_keys/keys...`: store sessions in the current version; returns its etag and
    /// count.
    pub async fn put_room_keys(
        &self,
        user: &UserId,
        version: &str,
        keys: &RoomKeys,
    ) -> Result<(String, u64), E2eeError> {
        let mut rows = Vec::new();
        for (room, sessions) in keys {
            for (session, data) in sessions {
                // Only what the server compares is read: `session_data` is the algorithm's
                // business (and encrypted).
                let object = canonical_object(data.json().get(), "key data")?;
                let bad = |what: &str| E2eeError::BadJson(format!("session {session}: {what}"));
                let count = |field: &str| match object.get(field) {
                    Some(ruma::CanonicalJsonValue::Integer(n)) if i64::from(*n) >= 0 => {
                        Ok(i64::from(*n))
                    }
                    _ => Err(bad(&format!("{field} must be a non-negative integer"))),
                };
                let is_verified = match object.get("is_verified") {
                    Some(ruma::CanonicalJsonValue::Bool(b)) => *b,
                    _ => return Err(bad("is_verified must be a boolean")),
                };
                if !matches!(
                    object.get("session_data"),
                    Some(ruma::CanonicalJsonValue::Object(_))
                ) {
                    return Err(bad("session_data must be an object"));
                }
                rows.push(RoomKeyRow {
                    room_id: room.clone(),
                    session_id: session.clone(),
                    first_message_index: count("first_message_index")?,
                    forwarded_count: count("forwarded_count")?,
                    is_verified,
                    key_data: ruma::CanonicalJsonValue::Object(object).to_string(),
                });
            }
        }
        let wrong = || E2eeError::WrongBackupVersion {
            given: version.to_owned(),
            current: None,
        };
        let Ok(number) = version.parse::<i64>() else {
            return Err(self
                .wrong_version(user, version)
                .await
                .unwrap_or_else(|_| wrong()));
        };
        match self
            .store
            .put_room_keys(user, number, &rows, keep_existing)
            .await?
        {
            Ok((etag, count)) => Ok((etag.to_string(), u64::try_from(count).unwrap_or(0))),
            Err(current) => Err(E2eeError::WrongBackupVersion {
                given: version.to_owned(),
                current: current.map(|c| c.to_string()),
            }),
        }
    }

    async fn wrong_version(&self, user: &UserId, version: &str) -> Result<E2eeError, E2eeError> {
        let current = self.store.backup_version(user, None).await?;
        Ok(E2eeError::WrongBackupVersion {
            given: version.to_owned(),
            current: current.map(|c| c.version.to_string()),
        })
    }

    /// `GET /room_keys/keys...`: the sessions of a version in `scope`.
    pub async fn room_keys(
        &self,
        user: &UserId,
        version: &str,
        scope: RoomKeyScope<'_>,
    ) -> Result<RoomKeys, E2eeError> {
        let number = self.existing_version(user, version).await?;
        let mut out: RoomKeys = BTreeMap::new();
        for row in self.store.room_keys(user, number, scope).await? {
            let raw = serde_json::value::RawValue::from_string(row.key_data)
                .map(Raw::from_json)
                .map_err(|e| E2eeError::BadJson(format!("stored key data: {e}")))?;
            out.entry(row.room_id)
                .or_default()
                .insert(row.session_id, raw);
        }
        Ok(out)
    }

    /// `DELETE /room_keys/keys...`: returns the version's etag and count after.
    pub async fn delete_room_keys(
        &self,
        user: &UserId,
        version: &str,
        scope: RoomKeyScope<'_>,
    ) -> Result<(String, u64), E2eeError> {
        let number = self.existing_version(user, version).await?;
        let (etag, count) = self.store.delete_room_keys(user, number, scope).await?;
        Ok((etag.to_string(), u64::try_from(count).unwrap_or(0)))
    }

    async fn existing_version(&self, user: &UserId, version: &str) -> Result<i64, E2eeError> {
        Ok(self
            .backup(user, Some(version))
            .await?
            .version
            .parse()
            .unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(verified: bool, index: i64, forwards: i64) -> RoomKeyRow {
        RoomKeyRow {
            room_id: ruma::owned_room_id!("!r:h.test"),
            session_id: "s".into(),
            first_message_index: index,
            forwarded_count: forwards,
            is_verified: verified,
            key_data: "{}".into(),
        }
    }

    #[test]
    fn the_better_session_is_kept() {
        // Verified beats unverified, whatever the index.
        assert!(keep_existing(&row(true, 5, 0), &row(false, 0, 0)));
        assert!(!keep_existing(&row(false, 0, 0), &row(true, 5, 0)));
        // Then the lower first message index.
        assert!(keep_existing(&row(false, 1, 3), &row(false, 2, 0)));
        assert!(!keep_existing(&row(false, 2, 0), &row(false, 1, 3)));
        // Then the fewer forwards; a tie keeps what is stored.
        assert!(keep_existing(&row(false, 1, 1), &row(false, 1, 2)));
        assert!(!keep_existing(&row(false, 1, 2), &row(false, 1, 1)));
        assert!(keep_existing(&row(false, 1, 1), &row(false, 1, 1)));
    }
}
