pub(crate) mod delete_device;
pub(crate) mod delete_devices;
pub(crate) mod get_device;
pub(crate) mod get_devices;
pub(crate) mod update_device;

use hearth_accounts::Device;
use ruma::MilliSecondsSinceUnixEpoch;
use ruma::api::client::device::Device as ClientDevice;

/// A device as the device endpoints show it. `last_seen_ip` is not recorded, so it stays empty
/// (the spec makes it optional).
pub(crate) fn to_client(device: Device) -> ClientDevice {
    let mut out = ClientDevice::new(device.device_id);
    out.display_name = device.display_name;
    out.last_seen_ts = device
        .last_seen_ms
        .and_then(|ms| ruma::UInt::try_from(ms).ok())
        .map(MilliSecondsSinceUnixEpoch);
    out
}
