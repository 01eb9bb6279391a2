//! Device keys, one-time keys and fallback keys: `keys/upload`, `keys/query`, `keys/claim`.

use std::collections::BTreeMap;

use hearth_store::{KeySignature, KeyUpload, UploadConflict};
use ruma::encryption::{CrossSigningKey, DeviceKeys, OneTimeKey};
use ruma::serde::Raw;
use ruma::{
    CanonicalJsonObject, CanonicalJsonValue, OneTimeKeyAlgorithm, OwnedDeviceId, OwnedOneTimeKeyId,
    OwnedUserId, UInt, UserId,
};
use serde_json::Value;

use crate::{E2ee, E2eeError, canonical_object};

/// Most one-time or fallback keys one upload may carry (clients upload a few dozen at a time).
const MAX_KEYS_PER_UPLOAD: usize = 1_000;
/// Most unclaimed one-time keys a device may hold: enough for any client's target, and a
/// device cannot grow the table without bound.
const MAX_KEYS_PER_DEVICE: u64 = 10_000;
/// Most devices one claim may ask keys for.
pub const MAX_CLAIMS: usize = 10_000;

/// What `keys/query` answers.
#[derive(Debug, Default)]
pub struct QueryResult {
    pub device_keys: BTreeMap<OwnedUserId, BTreeMap<OwnedDeviceId, Raw<DeviceKeys>>>,
    pub master_keys: BTreeMap<OwnedUserId, Raw<CrossSigningKey>>,
    pub self_signing_keys: BTreeMap<OwnedUserId, Raw<CrossSigningKey>>,
    pub user_signing_keys: BTreeMap<OwnedUserId, Raw<CrossSigningKey>>,
    /// By server name: the servers whose users could not be asked.
    pub failures: BTreeMap<String, Value>,
}

/// What `user/devices` answers another server.
#[derive(Debug)]
pub struct UserDevices {
    pub stream_id: i64,
    /// Device, keys, display name.
    pub devices: Vec<(OwnedDeviceId, Raw<DeviceKeys>, Option<String>)>,
    pub master_key: Option<Raw<CrossSigningKey>>,
    pub self_signing_key: Option<Raw<CrossSigningKey>>,
}

/// What `keys/claim` answers.
pub type ClaimResult =
    BTreeMap<OwnedUserId, BTreeMap<OwnedDeviceId, BTreeMap<OwnedOneTimeKeyId, Raw<OneTimeKey>>>>;

impl E2ee {
    /// Refuse an upload of too many keys, or of keys that are neither strings nor objects.
    pub(crate) fn check_key_upload(
        &self,
        one_time_keys: &BTreeMap<OwnedOneTimeKeyId, Raw<OneTimeKey>>,
        fallback_keys: &BTreeMap<OwnedOneTimeKeyId, Raw<OneTimeKey>>,
    ) -> Result<(), E2eeError> {
        if one_time_keys.len() > MAX_KEYS_PER_UPLOAD || fallback_keys.len() > MAX_KEYS_PER_UPLOAD {
            return Err(E2eeError::InvalidParam(format!(
                "at most {MAX_KEYS_PER_UPLOAD} one-time or fallback keys per upload"
            )));
        }
        keys_to_store(one_time_keys)?;
        keys_to_store(fallback_keys)?;
        Ok(())
    }

    /// Store a device's uploaded keys; returns its one-time key counts afterwards.
    pub async fn upload_keys(
        &self,
        user: &UserId,
        device: &ruma::DeviceId,
        device_keys: Option<&Raw<DeviceKeys>>,
        one_time_keys: &BTreeMap<OwnedOneTimeKeyId, Raw<OneTimeKey>>,
        fallback_keys: &BTreeMap<OwnedOneTimeKeyId, Raw<OneTimeKey>>,
    ) -> Result<BTreeMap<OneTimeKeyAlgorithm, UInt>, E2eeError> {
        self.check_key_upload(one_time_keys, fallback_keys)?;
        let mut upload = KeyUpload::default();
        if let Some(keys) = device_keys {
            upload.device_keys = Some(checked_device_keys(user, device, keys)?);
        }
        upload.one_time_keys = keys_to_store(one_time_keys)?;
        // One fallback key per algorithm: the last one named wins.
        let mut fallback: BTreeMap<String, (String, String, String)> = BTreeMap::new();
        for key in keys_to_store(fallback_keys)? {
            fallback.insert(key.1.clone(), key);
        }
        upload.fallback_keys = fallback.into_values().collect();
        if !upload.one_time_keys.is_empty() {
            let held: u64 = self
                .store
                .key_counts(user, device)
                .await?
                .one_time
                .values()
                .sum();
            if held + upload.one_time_keys.len() as u64 > MAX_KEYS_PER_DEVICE {
                return Err(E2eeError::InvalidParam(format!(
                    "a device holds at most {MAX_KEYS_PER_DEVICE} unclaimed one-time keys"
                )));
            }
        }
        if let Some(UploadConflict::OneTimeKey(id)) =
            self.store.upload_keys(user, device, &upload).await?
        {
            return Err(E2eeError::InvalidParam(format!(
                "one-time key {id} already exists with different content"
            )));
        }
        self.one_time_key_counts(user, device).await
    }

    /// A device's unclaimed one-time keys by algorithm (`signed_curve25519` always named,
    /// as clients look for it).
    pub async fn one_time_key_counts(
        &self,
        user: &UserId,
        device: &ruma::DeviceId,
    ) -> Result<BTreeMap<OneTimeKeyAlgorithm, UInt>, E2eeError> {
        let counts = self.store.key_counts(user, device).await?;
        let mut out: BTreeMap<OneTimeKeyAlgorithm, UInt> = counts
            .one_time
            .iter()
            .map(|(algorithm, n)| {
                (
                    OneTimeKeyAlgorithm::from(algorithm.as_str()),
                    UInt::try_from(*n).unwrap_or(UInt::MAX),
                )
            })
            .collect();
        out.entry(OneTimeKeyAlgorithm::SignedCurve25519)
            .or_insert(UInt::MIN);
        Ok(out)
    }

    /// The algorithms of a device's fallback keys that were not handed out yet.
    pub async fn unused_fallback_key_types(
        &self,
        user: &UserId,
        device: &ruma::DeviceId,
    ) -> Result<Vec<OneTimeKeyAlgorithm>, E2eeError> {
        let counts = self.store.key_counts(user, device).await?;
        Ok(counts
            .unused_fallback
            .iter()
            .map(|a| OneTimeKeyAlgorithm::from(a.as_str()))
            .collect())
    }

    /// `keys/query`: the keys of the local users (and devices; all when empty) asked for, with
    /// the signatures `viewer` may see.
    pub async fn query_keys(
        &self,
        viewer: &UserId,
        wanted: &BTreeMap<OwnedUserId, Vec<OwnedDeviceId>>,
    ) -> Result<QueryResult, E2eeError> {
        self.query_keys_as(Some(viewer), wanted).await
    }

    /// `keys/query` from another server (only local users are asked for): the keys with the
    /// signatures their owners made, and no user-signing keys.
    pub async fn query_keys_for_server(
        &self,
        wanted: &BTreeMap<OwnedUserId, Vec<OwnedDeviceId>>,
    ) -> Result<QueryResult, E2eeError> {
        self.query_keys_as(None, wanted).await
    }

    /// `user/devices` from another server: a local user's devices with their keys and names,
    /// the device-list position they are at, and the master and self-signing keys.
    pub async fn devices_for_server(&self, user: &UserId) -> Result<UserDevices, E2eeError> {
        let stream_id = self.store.device_list_stream_id(user).await?;
        let wanted = BTreeMap::from([(user.to_owned(), Vec::new())]);
        let mut found = self.query_keys_as(None, &wanted).await?;
        let names: BTreeMap<OwnedDeviceId, Option<String>> = self
            .store
            .devices(user)
            .await?
            .into_iter()
            .map(|d| (d.device_id, d.display_name))
            .collect();
        let devices = found
            .device_keys
            .remove(user)
            .unwrap_or_default()
            .into_iter()
            .map(|(device, keys)| {
                let name = names.get(&device).cloned().flatten();
                (device, keys, name)
            })
            .collect();
        Ok(UserDevices {
            stream_id,
            devices,
            master_key: found.master_keys.remove(user),
            self_signing_key: found.self_signing_keys.remove(user),
        })
    }

    async fn query_keys_as(
        &self,
        viewer: Option<&UserId>,
        wanted: &BTreeMap<OwnedUserId, Vec<OwnedDeviceId>>,
    ) -> Result<QueryResult, E2eeError> {
        let mut result = QueryResult::default();
        for (user, devices) in wanted {
            // Other servers' users are asked of their servers (`hearth-federation`).
            if !self.is_local(user) {
                continue;
            }
            let signatures = self.store.key_signatures(user).await?;
            let visible: Vec<&KeySignature> = signatures
                .iter()
                .filter(|s| s.signer_user == *user || Some(&*s.signer_user) == viewer)
                .collect();
            let names: BTreeMap<OwnedDeviceId, Option<String>> = self
                .store
                .devices(user)
                .await?
                .into_iter()
                .map(|d| (d.device_id, d.display_name))
                .collect();
            let mut keys_of_user = BTreeMap::new();
            for (device, keys) in self.store.device_keys(user, devices).await? {
                let mut object = canonical_object(&keys, "stored device keys")?;
                merge_signatures(&mut object, device.as_str(), &visible);
                if let Some(Some(name)) = names.get(&device) {
                    let mut unsigned = CanonicalJsonObject::new();
                    unsigned.insert(
                        "device_display_name".into(),
                        CanonicalJsonValue::String(name.clone()),
                    );
                    object.insert("unsigned".into(), CanonicalJsonValue::Object(unsigned));
                }
                keys_of_user.insert(device, to_raw(&object)?);
            }
            result.device_keys.insert(user.clone(), keys_of_user);
            for (key_type, keys) in self.store.cross_signing_keys(user).await? {
                if key_type == "user_signing" && viewer != Some(&**user) {
                    continue;
                }
                let mut object = canonical_object(&keys, "stored cross-signing key")?;
                if let Some(public) = single_public_key(&object) {
                    merge_signatures(&mut object, &public, &visible);
                }
                let raw = to_raw(&object)?;
                match key_type.as_str() {
                    "master" => result.master_keys.insert(user.clone(), raw),
                    "self_signing" => result.self_signing_keys.insert(user.clone(), raw),
                    _ => result.user_signing_keys.insert(user.clone(), raw),
                };
            }
        }
        Ok(result)
    }

    /// `keys/claim`: one key per local device asked for (a one-time key, else its fallback
    /// key).
    pub async fn claim_keys(
        &self,
        wanted: &BTreeMap<OwnedUserId, BTreeMap<OwnedDeviceId, OneTimeKeyAlgorithm>>,
    ) -> Result<ClaimResult, E2eeError> {
        let mut local = Vec::new();
        for (user, devices) in wanted {
            if !self.is_local(user) {
                continue;
            }
            for (device, algorithm) in devices {
                local.push((user.clone(), device.clone(), algorithm.to_string()));
            }
        }
        if local.len() > MAX_CLAIMS {
            return Err(E2eeError::InvalidParam(format!(
                "at most {MAX_CLAIMS} devices per claim"
            )));
        }
        let mut keys = ClaimResult::new();
        for (user, device, (key_id, key)) in self.store.claim_keys(&local).await? {
            let key_id = OwnedOneTimeKeyId::try_from(key_id.as_str())
                .map_err(|e| E2eeError::BadJson(format!("stored key id {key_id:?}: {e}")))?;
            let raw = Raw::from_json(
                serde_json::value::RawValue::from_string(key)
                    .map_err(|e| E2eeError::BadJson(format!("stored key: {e}")))?,
            );
            keys.entry(user)
                .or_default()
                .entry(device)
                .or_default()
                .insert(key_id, raw);
        }
        Ok(keys)
    }
}

/// Device keys as uploaded, checked to be this device's and canonicalised.
pub(crate) fn checked_device_keys(
    user: &UserId,
    device: &ruma::DeviceId,
    keys: &Raw<DeviceKeys>,
) -> Result<String, E2eeError> {
    let parsed = keys
        .deserialize()
        .map_err(|e| E2eeError::BadJson(format!("device_keys: {e}")))?;
    if parsed.user_id != user || parsed.device_id != device {
        return Err(E2eeError::InvalidParam(
            "device_keys must name the uploading user and device".into(),
        ));
    }
    let object = canonical_object(keys.json().get(), "device_keys")?;
    Ok(CanonicalJsonValue::Object(object).to_string())
}

/// `(algorithm:key_id, algorithm, canonical JSON)` for each key.
fn keys_to_store(
    keys: &BTreeMap<OwnedOneTimeKeyId, Raw<OneTimeKey>>,
) -> Result<Vec<(String, String, String)>, E2eeError> {
    keys.iter()
        .map(|(id, key)| {
            let value: CanonicalJsonValue = serde_json::from_str(key.json().get())
                .map_err(|e| E2eeError::BadJson(format!("key {id}: {e}")))?;
            if !matches!(
                value,
                CanonicalJsonValue::String(_) | CanonicalJsonValue::Object(_)
            ) {
                return Err(E2eeError::BadJson(format!(
                    "key {id}: a key is a string or a signed object"
                )));
            }
            Ok((
                id.to_string(),
                id.algorithm().to_string(),
                value.to_string(),
            ))
        })
        .collect()
}

/// The public key of a cross-signing key object (its one `keys` entry, without the
/// `ed25519:` prefix).
pub(crate) fn single_public_key(object: &CanonicalJsonObject) -> Option<String> {
    match object.get("keys") {
        Some(CanonicalJsonValue::Object(keys)) if keys.len() == 1 => {
            keys.values().next().and_then(|v| match v {
                CanonicalJsonValue::String(s) => Some(s.clone()),
                _ => None,
            })
        }
        _ => None,
    }
}

/// Add the separately uploaded signatures of `target_key` to a key object.
fn merge_signatures(object: &mut CanonicalJsonObject, target_key: &str, visible: &[&KeySignature]) {
    let mine = visible.iter().filter(|s| s.target_key == target_key);
    let signatures = object
        .entry("signatures".into())
        .or_insert_with(|| CanonicalJsonValue::Object(CanonicalJsonObject::new()));
    let CanonicalJsonValue::Object(signatures) = signatures else {
        return;
    };
    for s in mine {
        let by_user = signatures
            .entry(s.signer_user.to_string())
            .or_insert_with(|| CanonicalJsonValue::Object(CanonicalJsonObject::new()));
        if let CanonicalJsonValue::Object(by_user) = by_user {
            by_user.insert(
                s.signer_key.clone(),
                CanonicalJsonValue::String(s.signature.clone()),
            );
        }
    }
}

fn to_raw<T>(object: &CanonicalJsonObject) -> Result<Raw<T>, E2eeError> {
    let json = CanonicalJsonValue::Object(object.clone()).to_string();
    serde_json::value::RawValue::from_string(json)
        .map(Raw::from_json)
        .map_err(|e| E2eeError::BadJson(e.to_string()))
}
