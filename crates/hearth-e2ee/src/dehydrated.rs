//! Dehydrated devices (MSC3814): a device the user's clients keep on the server while no real
//! device is signed in, so that others can still encrypt to them. It publishes keys and
//! receives to-device messages as any device does; a new real device fetches its pickle
//! (encrypted with a key from secret storage, which the server never sees), reads the messages
//! it received, and replaces it with a new one.

use std::collections::BTreeMap;

use hearth_store::DehydratedConflict;
use ruma::encryption::{DeviceKeys, OneTimeKey};
use ruma::serde::Raw;
use ruma::{DeviceId, OwnedDeviceId, OwnedOneTimeKeyId, UserId};

use crate::keys::checked_device_keys;
use crate::{E2ee, E2eeError, ToDeviceEvent, canonical_object};

/// A dehydrated device as its client uploads it.
#[derive(Debug)]
pub struct DehydratedUpload<'a> {
    pub device_id: &'a DeviceId,
    pub display_name: Option<&'a str>,
    /// The client's encrypted pickle: a JSON object naming its `algorithm`.
    pub device_data: &'a str,
    pub device_keys: &'a Raw<DeviceKeys>,
    pub one_time_keys: &'a BTreeMap<OwnedOneTimeKeyId, Raw<OneTimeKey>>,
    pub fallback_keys: &'a BTreeMap<OwnedOneTimeKeyId, Raw<OneTimeKey>>,
}

impl E2ee {
    /// Store the user's dehydrated device with its keys, replacing the one they had.
    pub async fn put_dehydrated_device(
        &self,
        user: &UserId,
        upload: DehydratedUpload<'_>,
    ) -> Result<(), E2eeError> {
        let device = upload.device_id;
        // Everything is checked before anything is stored.
        checked_device_keys(user, device, upload.device_keys)?;
        let data = canonical_object(upload.device_data, "device_data")?;
        if !data
            .get("algorithm")
            .is_some_and(|a| matches!(a, ruma::CanonicalJsonValue::String(_)))
        {
            return Err(E2eeError::BadJson(
                "device_data must name its algorithm".into(),
            ));
        }
        self.check_key_upload(upload.one_time_keys, upload.fallback_keys)?;
        match self
            .store
            .put_dehydrated_device(user, device, upload.display_name, upload.device_data)
            .await?
        {
            Ok(()) => {}
            Err(DehydratedConflict::DeviceExists) => {
                return Err(E2eeError::InvalidParam(format!(
                    "{device} is one of your devices already; a dehydrated device needs an id \
                     of its own"
                )));
            }
        }
        self.upload_keys(
            user,
            device,
            Some(upload.device_keys),
            upload.one_time_keys,
            upload.fallback_keys,
        )
        .await?;
        Ok(())
    }

    /// The user's dehydrated device: its id and pickle.
    pub async fn dehydrated_device(
        &self,
        user: &UserId,
    ) -> Result<(OwnedDeviceId, String), E2eeError> {
        self.store
            .dehydrated_device(user)
            .await?
            .ok_or_else(no_dehydrated_device)
    }

    /// Delete the user's dehydrated device; its id.
    pub async fn delete_dehydrated_device(
        &self,
        user: &UserId,
    ) -> Result<OwnedDeviceId, E2eeError> {
        self.store
            .delete_dehydrated_device(user)
            .await?
            .ok_or_else(no_dehydrated_device)
    }

    /// The to-device messages the dehydrated device received after `next_batch` (the token of
    /// the previous page, which acknowledges that page), and the token of this page.
    pub async fn dehydrated_device_events(
        &self,
        user: &UserId,
        device: &DeviceId,
        next_batch: Option<&str>,
    ) -> Result<(Vec<ToDeviceEvent>, String), E2eeError> {
        let (dehydrated, _) = self.dehydrated_device(user).await?;
        if dehydrated != device {
            return Err(no_dehydrated_device());
        }
        let since = match next_batch {
            None => None,
            Some(token) => Some(
                token
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| E2eeError::InvalidParam("unknown next_batch".into()))?,
            ),
        };
        let upto = self.store.max_to_device_stream();
        let (events, seen) = self.to_device_for(user, device, since, upto, None).await?;
        Ok((events, seen.to_string()))
    }
}

fn no_dehydrated_device() -> E2eeError {
    E2eeError::NotFound("no dehydrated device".into())
}
