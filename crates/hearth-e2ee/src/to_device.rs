//! Send-to-device messages: `PUT /sendToDevice/{type}/{txnId}` queues them per device, and sync
//! delivers them until the device acknowledges them by syncing from a later token.

use std::collections::BTreeMap;

use hearth_store::ToDeviceMessage;
use ruma::events::AnyToDeviceEventContent;
use ruma::serde::Raw;
use ruma::to_device::DeviceIdOrAllDevices;
use ruma::{DeviceId, OwnedUserId, UserId};
use serde_json::value::RawValue;

use crate::{E2ee, E2eeError};

/// Most messages one sync delivers to a device; the rest come with the next.
pub const MAX_TO_DEVICE_BATCH: usize = 100;

/// A message as delivered: `{"sender", "type", "content"}`.
pub type ToDeviceEvent = Box<RawValue>;

impl E2ee {
    /// Queue `messages` from the sender's device, once per transaction id. `*` addresses all of
    /// a user's devices; unknown users and devices are skipped, as are remote users (sending to
    /// other servers is still to come).
    pub async fn send_to_device(
        &self,
        sender: &UserId,
        sender_device: &DeviceId,
        event_type: &str,
        txn_id: &str,
        messages: &BTreeMap<
            OwnedUserId,
            BTreeMap<DeviceIdOrAllDevices, Raw<AnyToDeviceEventContent>>,
        >,
    ) -> Result<(), E2eeError> {
        let queue = self.local_queue(messages).await?;
        self.store
            .send_to_device(sender, Some((sender_device, txn_id)), event_type, &queue)
            .await?;
        Ok(())
    }

    /// Queue messages a partner's user sent to local users (an `m.direct_to_device` EDU; the
    /// caller checked that the sender belongs to the sending server).
    pub async fn receive_to_device(
        &self,
        sender: &UserId,
        event_type: &str,
        messages: &BTreeMap<
            OwnedUserId,
            BTreeMap<DeviceIdOrAllDevices, Raw<AnyToDeviceEventContent>>,
        >,
    ) -> Result<(), E2eeError> {
        let queue = self.local_queue(messages).await?;
        self.store
            .send_to_device(sender, None, event_type, &queue)
            .await?;
        Ok(())
    }

    /// The messages for local devices, one per device (`*` expanded).
    async fn local_queue(
        &self,
        messages: &BTreeMap<
            OwnedUserId,
            BTreeMap<DeviceIdOrAllDevices, Raw<AnyToDeviceEventContent>>,
        >,
    ) -> Result<Vec<ToDeviceMessage>, E2eeError> {
        let mut queue = Vec::new();
        for (user, devices) in messages {
            if !self.is_local(user) {
                tracing::debug!(%user, "to-device message for a remote user dropped");
                continue;
            }
            for (target, content) in devices {
                let content = content.json().get();
                if !content.trim_start().starts_with('{') {
                    return Err(E2eeError::BadJson(format!(
                        "the message for {user} is not a JSON object"
                    )));
                }
                match target {
                    DeviceIdOrAllDevices::DeviceId(device) => queue.push(ToDeviceMessage {
                        user: user.clone(),
                        device: device.clone(),
                        content: content.to_owned(),
                    }),
                    DeviceIdOrAllDevices::AllDevices => {
                        for device in self.store.devices(user).await? {
                            queue.push(ToDeviceMessage {
                                user: user.clone(),
                                device: device.device_id,
                                content: content.to_owned(),
                            });
                        }
                    }
                }
            }
        }
        Ok(queue)
    }

    /// The device's messages after `since` up to `upto` (at most `limit`, and never more than
    /// [`MAX_TO_DEVICE_BATCH`]), and the position it has then seen (`upto`, or the last one
    /// delivered when more wait). Messages up to `since` are deleted first: syncing from it
    /// acknowledges them.
    pub async fn to_device_for(
        &self,
        user: &UserId,
        device: &DeviceId,
        since: Option<i64>,
        upto: i64,
        limit: Option<usize>,
    ) -> Result<(Vec<ToDeviceEvent>, i64), E2eeError> {
        let since = since.unwrap_or(0);
        let batch = limit
            .unwrap_or(MAX_TO_DEVICE_BATCH)
            .clamp(1, MAX_TO_DEVICE_BATCH);
        if since > 0 {
            self.store
                .acknowledge_to_device(user, device, since)
                .await?;
        }
        let rows = self
            .store
            .to_device_since(user, device, since, upto, batch)
            .await?;
        let seen = if rows.len() >= batch {
            rows.last().map_or(upto, |r| r.stream_ordering)
        } else {
            upto
        };
        let mut events = Vec::with_capacity(rows.len());
        for row in rows {
            let content = RawValue::from_string(row.content)
                .map_err(|e| E2eeError::BadJson(format!("stored to-device content: {e}")))?;
            let event = serde_json::json!({
                "sender": row.sender,
                "type": row.event_type,
                "content": content,
            });
            events.push(
                serde_json::value::to_raw_value(&event)
                    .map_err(|e| E2eeError::BadJson(e.to_string()))?,
            );
        }
        Ok((events, seen))
    }
}
