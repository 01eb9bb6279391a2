//! Cross-signing: `keys/device_signing/upload` (a user's master, self-signing and
//! user-signing keys) and `keys/signatures/upload` (signatures on devices and on other users'
//! master keys). Every signature the server stores is checked first: a self-signing key must
//! be signed by the master key, a signature on a device by the self-signing key, a signature on
//! another user's master key by the signer's user-signing key.

use std::collections::BTreeMap;

use hearth_store::KeySignature;
use ruma::encryption::CrossSigningKey;
use ruma::serde::{Base64, Raw};
use ruma::signatures::{to_canonical_json_string_for_signing, verify_canonical_json_bytes};
use ruma::{CanonicalJsonObject, CanonicalJsonValue, OwnedUserId, SigningKeyAlgorithm, UserId};

use crate::keys::single_public_key;
use crate::{E2ee, E2eeError, canonical_object};

/// The keys of one `keys/device_signing/upload`.
#[derive(Debug, Default)]
pub struct SigningKeysUpload<'a> {
    pub master: Option<&'a Raw<CrossSigningKey>>,
    pub self_signing: Option<&'a Raw<CrossSigningKey>>,
    pub user_signing: Option<&'a Raw<CrossSigningKey>>,
}

/// One refused signature of `keys/signatures/upload`: `(errcode, message)`.
pub type SignatureFailure = (&'static str, String);

/// A cross-signing key, checked and canonicalised.
struct CheckedKey {
    key_type: &'static str,
    object: CanonicalJsonObject,
    public: String,
}

impl E2ee {
    /// Whether this upload needs the user to authenticate again. It does not when the user has
    /// no master key yet (a first set-up), or when every key uploaded is already stored.
    pub async fn signing_upload_needs_auth(
        &self,
        user: &UserId,
        upload: &SigningKeysUpload<'_>,
    ) -> Result<bool, E2eeError> {
        let stored = self.store.cross_signing_keys(user).await?;
        if !stored.contains_key("master") {
            return Ok(false);
        }
        for (key_type, key) in [
            ("master", upload.master),
            ("self_signing", upload.self_signing),
            ("user_signing", upload.user_signing),
        ] {
            let Some(key) = key else { continue };
            let canonical =
                CanonicalJsonValue::Object(canonical_object(key.json().get(), key_type)?);
            if stored.get(key_type) != Some(&canonical.to_string()) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Store a user's new cross-signing keys, after checking them.
    pub async fn upload_signing_keys(
        &self,
        user: &UserId,
        upload: &SigningKeysUpload<'_>,
    ) -> Result<(), E2eeError> {
        let master = upload
            .master
            .map(|k| checked_key(user, k, "master"))
            .transpose()?;
        let master_public = match &master {
            Some(m) => m.public.clone(),
            None => {
                let stored = self.store.cross_signing_keys(user).await?;
                let Some(stored) = stored.get("master") else {
                    return Err(E2eeError::InvalidParam(
                        "upload a master key before the keys it signs".into(),
                    ));
                };
                single_public_key(&canonical_object(stored, "stored master key")?)
                    .ok_or_else(|| E2eeError::BadJson("stored master key has no key".into()))?
            }
        };
        let mut keys = Vec::new();
        for (key_type, key) in [
            ("self_signing", upload.self_signing),
            ("user_signing", upload.user_signing),
        ] {
            let Some(key) = key else { continue };
            let checked = checked_key(user, key, key_type)?;
            if !signed_by(&checked.object, user, &master_public, &master_public) {
                return Err(E2eeError::InvalidSignature(format!(
                    "the {key_type} key must be signed by the master key"
                )));
            }
            keys.push(checked);
        }
        keys.extend(master);
        if keys.is_empty() {
            return Ok(());
        }
        let rows: Vec<(String, String)> = keys
            .into_iter()
            .map(|k| {
                (
                    k.key_type.to_owned(),
                    CanonicalJsonValue::Object(k.object).to_string(),
                )
            })
            .collect();
        self.store.set_cross_signing_keys(user, &rows).await?;
        Ok(())
    }

    /// Check and store uploaded signatures; returns those refused, by user and key id.
    pub async fn upload_signatures(
        &self,
        signer: &UserId,
        signed: &BTreeMap<OwnedUserId, BTreeMap<String, Box<serde_json::value::RawValue>>>,
    ) -> Result<BTreeMap<OwnedUserId, BTreeMap<String, SignatureFailure>>, E2eeError> {
        let own_cross_signing = self.store.cross_signing_keys(signer).await?;
        let own_key = |key_type: &str| -> Option<String> {
            own_cross_signing
                .get(key_type)
                .and_then(|k| canonical_object(k, key_type).ok())
                .and_then(|o| single_public_key(&o))
        };
        let self_signing = own_key("self_signing");
        let user_signing = own_key("user_signing");
        let master = own_key("master");
        let own_devices = self.store.device_keys(signer, &[]).await?;
        let mut accepted = Vec::new();
        let mut failures: BTreeMap<OwnedUserId, BTreeMap<String, SignatureFailure>> =
            BTreeMap::new();
        for (target, keys) in signed {
            for (key_id, json) in keys {
                let outcome = self
                    .check_signed_key(
                        signer,
                        target,
                        key_id,
                        json.get(),
                        SignerKeys {
                            master: master.as_deref(),
                            self_signing: self_signing.as_deref(),
                            user_signing: user_signing.as_deref(),
                            devices: &own_devices,
                        },
                    )
                    .await?;
                match outcome {
                    Ok(signatures) => accepted.extend(signatures),
                    Err(failure) => {
                        failures
                            .entry(target.clone())
                            .or_default()
                            .insert(key_id.clone(), failure);
                    }
                }
            }
        }
        self.store.add_key_signatures(&accepted).await?;
        Ok(failures)
    }

    /// The signatures by `signer` on one uploaded key that verify, or why none is taken.
    async fn check_signed_key(
        &self,
        signer: &UserId,
        target: &UserId,
        key_id: &str,
        json: &str,
        keys: SignerKeys<'_>,
    ) -> Result<Result<Vec<KeySignature>, SignatureFailure>, E2eeError> {
        let Ok(uploaded) = serde_json::from_str::<CanonicalJsonObject>(json) else {
            return Ok(Err(("M_BAD_JSON", "not a JSON object".into())));
        };
        // What the signature covers must be the stored key, and the key that signed it one the
        // signer holds for that purpose.
        let (stored, signing_keys): (Option<String>, Vec<(String, String)>) = if target == signer {
            let devices = self.store.device_keys(target, &[]).await?;
            if let Some((_, device)) = devices.iter().find(|(d, _)| d.as_str() == key_id) {
                // A device of the signer's, signed by their self-signing key.
                let signing = keys.self_signing.map(|k| (k.to_owned(), k.to_owned()));
                (Some(device.clone()), signing.into_iter().collect())
            } else if keys.master == Some(key_id) {
                // Their own master key, signed by one of their devices.
                let stored = self.store.cross_signing_keys(target).await?;
                let device_keys = keys
                    .devices
                    .iter()
                    .filter_map(|(device, json)| {
                        device_ed25519(json, device.as_str()).map(|k| (device.to_string(), k))
                    })
                    .collect();
                (stored.get("master").cloned(), device_keys)
            } else {
                (None, Vec::new())
            }
        } else {
            // Another user's master key, signed by the signer's user-signing key.
            let stored = self.store.cross_signing_keys(target).await?;
            let master = stored.get("master").cloned().filter(|m| {
                canonical_object(m, "master")
                    .ok()
                    .and_then(|o| single_public_key(&o))
                    .as_deref()
                    == Some(key_id)
            });
            let signing = keys.user_signing.map(|k| (k.to_owned(), k.to_owned()));
            (master, signing.into_iter().collect())
        };
        let Some(stored) = stored else {
            return Ok(Err(("M_NOT_FOUND", format!("no key {key_id} of {target}"))));
        };
        let Ok(stored) = canonical_object(&stored, "stored key") else {
            return Ok(Err(("M_UNKNOWN", "the stored key does not parse".into())));
        };
        if to_canonical_json_string_for_signing(&stored).ok()
            != to_canonical_json_string_for_signing(&uploaded).ok()
        {
            return Ok(Err((
                "M_INVALID_SIGNATURE",
                "the signed object is not the stored key".into(),
            )));
        }
        let mut accepted = Vec::new();
        for (signing_key_name, public) in &signing_keys {
            if signed_by(&uploaded, signer, signing_key_name, public)
                && let Some(signature) = signature_of(&uploaded, signer, signing_key_name)
            {
                accepted.push(KeySignature {
                    target_user: target.to_owned(),
                    target_key: key_id.to_owned(),
                    signer_user: signer.to_owned(),
                    signer_key: format!("ed25519:{signing_key_name}"),
                    signature,
                });
            }
        }
        if accepted.is_empty() {
            return Ok(Err((
                "M_INVALID_SIGNATURE",
                "no valid signature by a key that may sign this".into(),
            )));
        }
        Ok(Ok(accepted))
    }
}

/// The signer's keys that may sign something.
#[derive(Clone, Copy)]
struct SignerKeys<'a> {
    master: Option<&'a str>,
    self_signing: Option<&'a str>,
    user_signing: Option<&'a str>,
    devices: &'a BTreeMap<ruma::OwnedDeviceId, String>,
}

/// A cross-signing key checked against the spec's shape: the uploader's, one ed25519 key whose
/// id is its public key, and the usage its slot calls for.
fn checked_key(
    user: &UserId,
    key: &Raw<CrossSigningKey>,
    key_type: &'static str,
) -> Result<CheckedKey, E2eeError> {
    let parsed = key
        .deserialize()
        .map_err(|e| E2eeError::BadJson(format!("{key_type} key: {e}")))?;
    if parsed.user_id != user {
        return Err(E2eeError::InvalidParam(format!(
            "the {key_type} key must be the uploading user's"
        )));
    }
    if !parsed.usage.iter().any(|u| u.as_str() == key_type) {
        return Err(E2eeError::InvalidParam(format!(
            "the {key_type} key must have usage {key_type}"
        )));
    }
    let object = canonical_object(key.json().get(), key_type)?;
    let public = single_public_key(&object).ok_or_else(|| {
        E2eeError::InvalidParam(format!("the {key_type} key must hold exactly one key"))
    })?;
    let id_matches = match object.get("keys") {
        Some(CanonicalJsonValue::Object(keys)) => keys.contains_key(&format!("ed25519:{public}")),
        _ => false,
    };
    if !id_matches {
        return Err(E2eeError::InvalidParam(format!(
            "the {key_type} key's id must be ed25519:<its public key>"
        )));
    }
    Ok(CheckedKey {
        key_type,
        object,
        public,
    })
}

/// A device's ed25519 key, from its stored device keys.
fn device_ed25519(json: &str, device: &str) -> Option<String> {
    let object = canonical_object(json, "device keys").ok()?;
    match object.get("keys") {
        Some(CanonicalJsonValue::Object(keys)) => match keys.get(&format!("ed25519:{device}")) {
            Some(CanonicalJsonValue::String(key)) => Some(key.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// `signatures[signer]["ed25519:{key_name}"]` of an object.
fn signature_of(object: &CanonicalJsonObject, signer: &UserId, key_name: &str) -> Option<String> {
    let Some(CanonicalJsonValue::Object(signatures)) = object.get("signatures") else {
        return None;
    };
    let Some(CanonicalJsonValue::Object(by_signer)) = signatures.get(signer.as_str()) else {
        return None;
    };
    match by_signer.get(&format!("ed25519:{key_name}")) {
        Some(CanonicalJsonValue::String(s)) => Some(s.clone()),
        _ => None,
    }
}

/// Whether `object` carries a valid signature by `signer`'s key `ed25519:{key_name}`, whose
/// public key is `public` (unpadded base64).
fn signed_by(object: &CanonicalJsonObject, signer: &UserId, key_name: &str, public: &str) -> bool {
    let Some(signature) = signature_of(object, signer, key_name) else {
        return false;
    };
    let (Ok(public), Ok(signature)) = (
        Base64::<ruma::serde::base64::Standard>::parse(public),
        Base64::<ruma::serde::base64::Standard>::parse(&signature),
    ) else {
        return false;
    };
    let Ok(canonical) = to_canonical_json_string_for_signing(object) else {
        return false;
    };
    verify_canonical_json_bytes(
        &SigningKeyAlgorithm::Ed25519,
        public.as_bytes(),
        signature.as_bytes(),
        canonical.as_bytes(),
    )
    .is_ok()
}
